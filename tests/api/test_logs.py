"""The services' log output never contains a secret, an API key, a token, a mnemonic or payload
bytes: a full flow through both services (SDK send/status/receive/verify, a raw download of the
ciphertext, anonymous drop and pickup, rejected keys, a key in a URL),
then a grep of everything `paramant up` printed for each of them. Runs last (it stops the
services)."""
import base64
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from paramant_sdk import GhostPipe

MARKER = b"PARAMANT-LOG-TEST-PLAINTEXT-" + os.urandom(8).hex().encode()


def http(up, method, path, key=None, body=None):
    request = urllib.request.Request(up.dev["relay_url"] + path, method=method, data=body)
    if key:
        request.add_header("X-Api-Key", key)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def chunks(data: bytes, size=24):
    """Pieces of `data` as they could appear in a log: raw text, hex and base64 of 24-byte runs."""
    out = []
    for start in range(0, min(len(data), 24 * 8), size):
        piece = data[start:start + size]
        if len(piece) < size:
            break
        out += [piece.hex(), base64.b64encode(piece).decode()[:28], base64.urlsafe_b64encode(piece).decode()[:28]]
    return out


def secret_files(data_dir: Path):
    for path in data_dir.rglob("*"):
        if path.is_file() and any(word in path.name for word in ("key", "token", "secret")) and path.suffix not in (".toml", ".json", ".redb"):
            yield path


def test_no_secret_key_token_or_payload_reaches_the_logs(up):
    key = up.dev["api_key"]
    secrets = {"api key": key}
    sender = GhostPipe(api_key=key, device="log-test-sender", relay=up.dev["relay_url"], sig_id=0)
    receiver = GhostPipe(api_key=key, device="log-test-receiver", relay=up.dev["relay_url"])
    receiver.receive_setup()

    # SDK round trip; the receipt is verified through the relay.
    blob_hash, _ = sender.send(MARKER * 50, ttl=600, recipient="log-test-receiver")
    data, receipt = receiver.receive(blob_hash)
    assert data == MARKER * 50
    assert receiver.verify_receipt(receipt)["valid"] is True

    # A second blob downloaded raw: what the relay held in RAM (ciphertext) must not be logged.
    blob_hash, _ = sender.send(MARKER * 50, ttl=600, recipient="log-test-receiver")
    status, ciphertext, headers = http(up, "GET", f"/v2/outbound/{blob_hash}", key)
    assert status == 200 and len(ciphertext) > 1000
    secrets["receipt header"] = headers["X-Paramant-Receipt"][:60]

    # Anonymous drop and pickup: the mnemonic is the secret.
    mnemonic = sender.drop(MARKER, ttl=600)
    assert receiver.pickup(mnemonic) == MARKER
    secrets["mnemonic"] = mnemonic
    secrets["mnemonic words"] = " ".join(mnemonic.split()[3:9])

    blob_hash, _ = sender.send(MARKER, ttl=600, recipient="log-test-receiver")
    assert http(up, "GET", f"/v2/status/{blob_hash}", key)[0] == 200

    # Rejected credentials and a key in a URL are not echoed into the logs either.
    wrong = "pgp_" + os.urandom(24).hex()
    assert http(up, "GET", "/v2/audit", wrong)[0] == 401
    assert http(up, "GET", f"/v2/ct/log?api_key={wrong}")[0] == 400
    secrets["wrong key"] = wrong
    assert http(up, "POST", "/v2/inbound", key, json.dumps({"hash": "0" * 64, "payload": base64.b64encode(MARKER).decode()}).encode())[0] == 400

    # Everything the services hold as secret files: tokens (text) and key seeds (binary).
    for path in secret_files(up.data):
        raw = path.read_bytes()
        text = raw.decode(errors="ignore").strip()
        if len(text) >= 16 and text.isprintable():
            secrets[str(path)] = text
        else:
            secrets[f"{path} hex"] = raw.hex()
            secrets[f"{path} base64"] = base64.b64encode(raw).decode().rstrip("=")
    assert any("internal-token" in name for name in secrets), "the internal tokens were found"
    assert any("log-key" in name for name in secrets), "the log key was found"

    printed = up.stop()
    # `paramant up` prints the admin token once, on purpose, in its start-up summary to the
    # operator's terminal (dev.json holds it too); everything else is the services' log output.
    summary = [line for line in printed.splitlines() if line.startswith("  admin_token ")]
    assert len(summary) == 1, "up prints the admin token exactly once"
    output = "\n".join(line for line in printed.splitlines() if not line.startswith("  admin_token "))
    assert "paramant-relay" in output and "paramant-ctlog" in output, "both services' output was captured"
    assert "paramant-admin" in output, "the admin panel's output was captured"
    for name, value in secrets.items():
        assert value not in output, f"{name} appears in the logs"
    for piece in [MARKER.decode(), base64.b64encode(MARKER).decode()[:24], MARKER.hex()[:40]] + chunks(ciphertext):
        assert piece not in output, f"payload bytes appear in the logs: {piece}"

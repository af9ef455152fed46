"""Our `paramant` CLI and the published SDK (paramant-sdk 3.0.0, unmodified) are byte-compatible
both ways: what one sends (signed, anonymous, with a pre-shared secret, as a drop) the other
receives, decrypts and — for our CLI — checks the sender's ML-DSA-65 signature of."""
import base64
import hashlib
import json
import os
import subprocess

import pytest
from paramant_up import paramant_binary
from paramant_sdk import GhostPipe


def pipe(dev, device, **kwargs):
    return GhostPipe(api_key=dev["api_key"], device=device, relay=dev["relay_url"], **kwargs)


@pytest.fixture
def cli(dev, tmp_path):
    """Runs `paramant --json …` with its own config directory; returns (exit code, JSON)."""
    env = dict(os.environ, PARAMANT_HOME=str(tmp_path / "cli-home"), PARAMANT_RELAY=dev["relay_url"],
               PARAMANT_API_KEY=dev["api_key"])

    def run(*args, expect=0):
        proc = subprocess.run([str(paramant_binary()), "--json", *args], env=env, capture_output=True, timeout=120)
        assert proc.returncode == expect, proc.stdout.decode() + proc.stderr.decode()
        return json.loads(proc.stdout)

    return run


def test_cli_sends_and_the_sdk_receives(dev, cli, tmp_path):
    receiver = pipe(dev, "sdk-from-cli")
    receiver.receive_setup()
    for extra in ([], ["--anonymous"], ["--pad-block", "64k"]):
        payload = os.urandom(30_000)
        path = tmp_path / "in.bin"
        path.write_bytes(payload)
        sent = cli("--device", "cli-sender", "send", str(path), "--to", "sdk-from-cli", *extra)
        data, receipt = receiver.receive(sent["hash"])
        assert data == payload, extra
        # The SDK keeps the receipt of the download's headers, signed before the body was sent:
        # it cannot confirm the burn (the relay serves the confirming one on /v2/status).
        assert receipt["burn_confirmed"] is False
        assert receiver.verify_receipt(receipt)["valid"] is True


def test_the_sdk_sends_and_the_cli_receives_and_checks_the_signature(dev, cli, tmp_path):
    cli("--device", "cli-from-sdk", "register")
    sender = pipe(dev, "cli-from-sdk")  # the SDK sends to its own device name: the CLI's keys
    payload = os.urandom(100_000)
    blob_hash, proof = sender.send(payload, ttl=600)
    assert proof["tree_size"] > proof["leaf_index"]
    out = tmp_path / "out.bin"
    got = cli("--device", "cli-from-sdk", "receive", blob_hash, "-o", str(out))
    assert out.read_bytes() == payload
    sdk_key = json.load(open(os.path.expanduser("~/.paramant/cli-from-sdk.keypair.json")))
    assert got["sender"] == {
        "anonymous": False,
        "signature_valid": True,
        "key_hash": hashlib.sha3_256(bytes.fromhex(sdk_key["ml_dsa_pub"])).hexdigest(),
    }
    assert got["receipt"]["burn_confirmed"] is True

    # The receipt the CLI kept verifies with the SDK, and the SDK's receipt with the CLI.
    assert sender.verify_receipt(got["receipt"])["valid"] is True
    h2, _ = sender.send(b"second", ttl=600)
    got2 = cli("--device", "cli-from-sdk", "receive", h2)
    assert base64.b64decode(got2["data_base64"]) == b"second"
    header = base64.urlsafe_b64encode(json.dumps(got2["receipt"]).encode()).decode().rstrip("=")
    assert cli("receipt", "--verify", header)["valid"] is True


def test_anonymous_and_pre_shared_secret_from_the_sdk(dev, cli):
    cli("--device", "cli-anon", "register")
    anonymous = pipe(dev, "cli-anon", sig_id=0x0000)
    h, _ = anonymous.send(b"who am i", ttl=600)
    got = cli("--device", "cli-anon", "receive", h)
    assert base64.b64decode(got["data_base64"]) == b"who am i"
    assert got["sender"] == {"anonymous": True}

    signed = pipe(dev, "cli-anon")
    h, _ = signed.send(b"with a secret", ttl=600, pre_shared_secret="s3cret")
    got = cli("--device", "cli-anon", "receive", h, "--secret", "s3cret")
    assert base64.b64decode(got["data_base64"]) == b"with a secret"


def test_drops_both_ways(dev, cli, tmp_path):
    gp = pipe(dev, "sdk-drop")
    path = tmp_path / "drop.bin"
    path.write_bytes(b"dropped by the cli")
    dropped = cli("drop", str(path))
    assert len(dropped["mnemonic"].split()) == 12
    assert gp.pickup(dropped["mnemonic"]) == b"dropped by the cli"

    phrase = gp.drop(b"dropped by the sdk", ttl=600)
    got = cli("pickup", phrase)
    assert base64.b64decode(got["data_base64"]) == b"dropped by the sdk"


def test_a_blob_altered_in_transit_is_refused_by_the_cli(dev, cli, tmp_path):
    """A relay that flips a byte of a signed blob: our CLI refuses it (exit 1)."""
    import requests

    cli("--device", "cli-tamper", "register")
    sender = pipe(dev, "cli-tamper")
    kp = sender._load_keypair()  # the SDK's own blob, before upload
    rec = sender._fetch_receiver_pubkeys()
    blob, _ = sender._encrypt(b"original", rec["ml_kem_pub"], pad_block=64 * 1024)
    tampered = bytearray(blob)
    tampered[4000] ^= 1  # inside the signature or ciphertext region of a signed blob
    h = hashlib.sha256(tampered).hexdigest()
    r = requests.post(dev["relay_url"] + "/v2/inbound", headers={"X-Api-Key": dev["api_key"]},
                      json={"hash": h, "payload": base64.b64encode(bytes(tampered)).decode(), "ttl_ms": 600_000})
    assert kp["ml_dsa_pub"]
    if r.status_code != 200:  # a relay that checks sender signatures refuses it at the door
        assert 400 <= r.status_code < 500, r.text
        return
    got = cli("--device", "cli-tamper", "receive", h, expect=1)
    assert got["ok"] is False and got["error"] == "invalid"
    assert "signature" in got["message"]

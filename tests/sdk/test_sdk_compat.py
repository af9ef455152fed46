"""The published Python SDK (paramant-sdk 3.0.0), unmodified, against our relay: every call
it makes must succeed exactly as it expects (it treats only HTTP 200 as success)."""
import base64
import json
import os

import pytest
from paramant_sdk import GhostPipe, GhostPipeError


def pipe(dev, device, **kwargs):
    return GhostPipe(api_key=dev["api_key"], device=device, relay=dev["relay_url"], **kwargs)


def test_send_status_receive_burn_and_verify_receipt(dev):
    gp = pipe(dev, "sdk-roundtrip")
    gp.receive_setup()
    gp.receive_setup()  # re-registering the same keys is not an error
    payload = os.urandom(100_000)
    blob_hash, proof = gp.send(payload, ttl=600)
    assert proof["leaf_index"] >= 0 and proof["tree_size"] > proof["leaf_index"]
    assert proof["root"] == proof["sth"]["sha3_root"]

    status = gp.status(blob_hash)
    assert status["available"] is True
    assert status["bytes"] == 5 * 1024 * 1024  # the SDK pads every blob to 5 MiB
    # Signed with the ML-DSA-65 key this device registered in receive_setup: verified.
    assert status["sig_valid"] is True

    data, receipt = gp.receive(blob_hash)
    assert data == payload
    # Signed before the body was sent, the header receipt cannot confirm the burn: the blob is
    # burned once the client's TCP stack acknowledged every byte (README, "Burn on read").
    assert receipt["burn_confirmed"] is False
    assert receipt["blob_hash"] == blob_hash
    assert receipt["tree_size_at_retrieval"] >= proof["tree_size"]

    with pytest.raises(GhostPipeError):
        gp.receive(blob_hash)  # burned (or its burn being confirmed): a second download fails
    verdict = gp.verify_receipt(receipt)
    assert verdict["valid"] is True
    assert verdict["burn_confirmed"] is False

    # The owner gets the receipt that confirms the burn from /v2/status.
    for _ in range(500):
        status = gp.status(blob_hash)
        if status.get("burned"):
            break
    assert status["available"] is False and status["burned"] is True
    confirmed = gp.verify_receipt(status["burn_receipt"])
    assert confirmed["valid"] is True and confirmed["burn_confirmed"] is True


def test_a_tampered_receipt_is_invalid(dev):
    gp = pipe(dev, "sdk-tamper")
    gp.receive_setup()
    blob_hash, _ = gp.send(b"tamper test", ttl=600)
    _, receipt = gp.receive(blob_hash)
    forged_burn = not receipt["burn_confirmed"]
    for field, value in (("burn_confirmed", forged_burn), ("blob_hash", "0" * 64), ("tree_size_at_retrieval", 1)):
        forged = dict(receipt, **{field: value})
        with pytest.raises(GhostPipeError):
            gp.verify_receipt(forged)
    # The header form, as the relay sent it, with one character changed.
    header = base64.urlsafe_b64encode(json.dumps(receipt).encode()).decode().rstrip("=")
    assert gp.verify_receipt(header)["valid"] is True
    flipped = header[:40] + ("A" if header[40] != "A" else "B") + header[41:]
    with pytest.raises(GhostPipeError):
        gp.verify_receipt(flipped)


def test_anonymous_sender_to_another_device(dev):
    receiver = pipe(dev, "sdk-receiver")
    receiver.receive_setup()
    sender = pipe(dev, "sdk-anon-sender", sig_id=0)
    blob_hash, _ = sender.send(b"from nobody in particular", recipient="sdk-receiver", ttl=600)
    assert receiver.status(blob_hash)["sig_valid"] is False  # unsigned: nothing to verify
    data, receipt = receiver.receive(blob_hash)
    assert data == b"from nobody in particular"
    assert receipt["burn_confirmed"] is False  # signed before the body; see the first test


def test_drop_and_pickup_by_mnemonic(dev):
    gp = pipe(dev, "sdk-drop")
    phrase = gp.drop(b"dead drop contents", ttl=600)
    assert len(phrase.split()) == 12
    assert gp.pickup(phrase) == b"dead drop contents"
    with pytest.raises(GhostPipeError):
        gp.pickup(phrase)  # a drop is picked up once


def test_audit_capabilities_and_webhook(dev):
    gp = pipe(dev, "sdk-audit")
    gp.receive_setup()
    blob_hash, _ = gp.send(b"audited", ttl=600)
    events = {(e["event"], e["hash"]) for e in gp.audit(50)}
    assert ("inbound", blob_hash) in events
    caps = gp.capabilities()
    assert caps.wire_version == 1 and caps.supports_kem(2) and caps.supports_sig(2) and caps.supports_sig(0)
    gp.register_webhook("https://hooks.example.com/paramant", secret="s3cret")


def test_a_signature_is_verified_only_for_a_registered_sender(dev):
    receiver = pipe(dev, "sdk-verify-receiver")
    receiver.receive_setup()
    # Signs with a key of its own that no device registered: the relay cannot vouch for it.
    stranger = pipe(dev, "sdk-unregistered-sender")
    blob_hash, _ = stranger.send(b"who am I", recipient="sdk-verify-receiver", ttl=600)
    assert receiver.status(blob_hash)["sig_valid"] is False
    # Once it registers its keys, its signed blobs verify.
    stranger.receive_setup()
    blob_hash, _ = stranger.send(b"now you know", recipient="sdk-verify-receiver", ttl=600)
    assert receiver.status(blob_hash)["sig_valid"] is True
    data, _ = receiver.receive(blob_hash)
    assert data == b"now you know"


def test_dev_json_is_readable_by_its_owner_only(dev):
    assert dev["dev_json_mode"] == 0o600

"""Through the relay, the log's feed links name the relay's public origin (not the log's loopback
address), and the /ct/ page, the C2SP checkpoint and tiles are served on the relay's origin."""
import base64
import hashlib
import json
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers, response.read()


def test_feed_links_use_the_relays_origin(up):
    relay, log = up.dev["relay_url"], up.dev["ct_url"]
    assert relay != log
    _, _, rss = get(relay + "/ct/feed.xml")
    text = rss.decode()
    assert f"<link>{relay}/ct/</link>" in text
    assert log not in text


def test_page_checkpoint_and_tiles_are_served_through_the_relay(up):
    relay = up.dev["relay_url"]
    status, headers, _ = get(relay + "/ct/")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, note = get(relay + "/checkpoint")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    origin, size, root = note.decode().split("\n")[:3]
    # The tlog-tiles origin is the log's URL prefix without its scheme (c2sp.org/tlog-tiles).
    assert "://" not in origin and not origin.endswith("/")
    if int(size) > 0:
        width = min(int(size), 256)
        suffix = "" if width == 256 else f".p/{width}"
        status, headers, tile = get(relay + "/tile/0/000" + suffix)
        assert status == 200 and len(tile) == 32 * width
        assert headers["Content-Type"] == "application/octet-stream"
        # RFC 6962 over SHA-256: each entry of the bundle hashes to its level-0 tile hash.
        status, _, bundle = get(relay + "/tile/entries/000" + suffix)
        assert status == 200
        leaves = []
        while bundle:
            n = int.from_bytes(bundle[:2], "big")
            leaves.append(hashlib.sha256(b"\x00" + bundle[2:2 + n]).digest())
            bundle = bundle[2 + n:]
        assert b"".join(leaves) == tile
        if int(size) <= 256:
            assert base64.b64decode(root) == mth(leaves)


def mth(hashes):
    """RFC 6962 section 2.1 Merkle tree hash over leaf hashes."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def test_the_c2sp_checkpoint_verifies_from_the_spec_text_and_the_entries_give_its_root(up):
    """c2sp.org/signed-note + tlog-checkpoint + tlog-tiles, written here from the specs: the
    note's Ed25519 signature under the published verifier key, and the RFC 6962 SHA-256 root
    recomputed from every entry bundle."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    relay = up.dev["relay_url"]
    _, _, pubkey = get(relay + "/v2/pubkey")
    # The key is standard base64, which may itself contain "+": split off name and id only.
    name, key_id, typed = json.loads(pubkey)["checkpoint_key"].split("+", 2)
    typed = base64.b64decode(typed)
    assert typed[0] == 0x01 and len(typed) == 33  # Ed25519 signature type
    assert hashlib.sha256(name.encode() + b"\n" + typed).digest()[:4].hex() == key_id
    _, _, note = get(relay + "/checkpoint")
    text, signatures = note.decode().split("\n\n", 1)
    text += "\n"
    origin, size, root = text.splitlines()
    assert origin == name
    lines = [line for line in signatures.splitlines() if line.startswith("\u2014 " + name + " ")]
    assert len(lines) == 1
    signature = base64.b64decode(lines[0].split(" ")[2])
    assert signature[:4].hex() == key_id
    Ed25519PublicKey.from_public_bytes(typed[1:]).verify(signature[4:], text.encode())
    leaves = []
    for n in range((int(size) + 255) // 256):
        width = min(int(size) - 256 * n, 256)
        suffix = "" if width == 256 else f".p/{width}"
        status, _, bundle = get(relay + "/tile/entries/" + tile_index(n) + suffix)
        assert status == 200
        while bundle:
            length = int.from_bytes(bundle[:2], "big")
            leaves.append(hashlib.sha256(b"\x00" + bundle[2:2 + length]).digest())
            bundle = bundle[2 + length:]
    assert len(leaves) == int(size)
    expected = mth(leaves) if leaves else hashlib.sha256(b"").digest()
    assert base64.b64decode(root) == expected


def tile_index(n):
    """A tile index as tlog-tiles paths spell it: 3-digit groups, `x` before all but the last."""
    groups = [n % 1000]
    while n >= 1000:
        n //= 1000
        groups.insert(0, n % 1000)
    return "/".join([f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"])

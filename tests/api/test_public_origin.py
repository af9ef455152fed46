"""Through the relay, the log's feed links name the relay's public origin (not the log's loopback
address), and the /ct/ page, the C2SP checkpoint and tiles are served on the relay's origin."""
import base64
import hashlib
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

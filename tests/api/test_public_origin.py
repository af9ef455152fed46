"""Through the relay, the log's feed links name the relay's public origin (not the log's loopback
address), and the /ct/ page, the C2SP checkpoint and tiles are served on the relay's origin."""
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
    origin, size = note.decode().split("\n")[:2]
    assert origin.endswith("/sha3-256")
    if int(size) > 0:
        width = min(int(size), 256)
        suffix = "" if width == 256 else f".p/{width}"
        status, headers, tile = get(relay + "/tile/0/000" + suffix)
        assert status == 200 and len(tile) == 32 * width
        assert headers["Content-Type"] == "application/octet-stream"

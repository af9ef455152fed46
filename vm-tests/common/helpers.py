# Python helpers shared by the VM tests' scripts (spliced in front of each testScript).
import json


def ports(sector_index):
    """The layout of nixos-modules/lib/units.nix: relay 8000+n, log 8100+n/8200+n, relay internal 8300+n."""
    n = sector_index
    return {"relay": 8000 + n, "ctlog": 8100 + n, "ctlog_internal": 8200 + n, "relay_internal": 8300 + n}


HEALTH = ports(1)


def get_json(machine, url, headers=()):
    flags = " ".join(f"-H '{h}'" for h in headers)
    return json.loads(machine.succeed(f"curl -fsS {flags} {url}"))


def post_json(machine, url, body, headers=()):
    flags = " ".join(f"-H '{h}'" for h in headers)
    payload = json.dumps(body).replace("'", "'\\''")
    return json.loads(machine.succeed(
        f"curl -fsS -X POST -H 'content-type: application/json' {flags} -d '{payload}' {url}"))


def credential(machine, name):
    return machine.succeed(f"cat /etc/credstore/{name}").strip()


def wait_for_sector(machine, sector="health", p=HEALTH):
    machine.wait_for_unit(f"paramant-ctlog@{sector}.service")
    machine.wait_for_unit(f"paramant-relay@{sector}.service")
    machine.wait_for_open_port(p["relay"])
    machine.wait_until_succeeds(f"curl -fsS http://127.0.0.1:{p['relay']}/health")


def mint_key(machine, sector="health", p=HEALTH):
    token = credential(machine, f"paramant-{sector}.relay-internal-token")
    reply = post_json(machine, f"http://127.0.0.1:{p['relay_internal']}/internal/keys",
                      {"plan": "enterprise", "label": "NixOS VM test"}, [f"X-Internal-Auth: {token}"])
    return reply["key"]


def append(machine, sector="health", p=HEALTH, blob_hash=None):
    import hashlib, os
    token = credential(machine, f"paramant-{sector}.ctlog-internal-token")
    blob = blob_hash or hashlib.sha256(os.urandom(16)).hexdigest()
    return post_json(machine, f"http://127.0.0.1:{p['ctlog_internal']}/internal/append",
                     {"event": {"type": "transfer", "blob_hash": blob, "sector": sector}},
                     [f"X-Internal-Auth: {token}"])


def sth(machine, url):
    """The newest signed tree head at `url` (a log's or a relay's origin)."""
    return get_json(machine, f"{url}/v2/sth")["sth"]

# Two sector logs gossip and detect a fork. `a` and `forker` run the health log with one shared
# key (TEST fixture) and the same identity, then each appends a different leaf: two signed heads
# of one size with different roots — a split view. `b`, another log, pushes its head to `a` (a
# peer in its config), ingests a's head, and refuses forker's as fork evidence.
{ self, pkgs, ... }:
let
  shared = { ... }: {
    imports = [ (import ./common/sector.nix { inherit self pkgs; }) ];
    services.paramant.domain = "a.test";
    services.paramant.ctlog.health = { listenAddress = "0.0.0.0"; openFirewall = true; };
    services.paramant.ctlogAllowedIPs = [ "any" ];
    # TEST ONLY: both machines get the same published fixture seed as their log key.
    systemd.tmpfiles.rules = [
      "d /etc/credstore 0700 root root -"
      "C /etc/credstore/paramant-ctlog-health.log-key - - - - ${../fixtures/vm-tests/ctlog-health-shared.seed}"
    ];
  };
  sharedPublicKey = builtins.head (builtins.match "public_key ([^\n]*)\n.*" (builtins.readFile ../fixtures/vm-tests/ctlog-health-shared.pub));
in
{
  name = "gossip-fork";
  nodes.a = shared;
  nodes.forker = shared;
  nodes.b = { ... }: {
    imports = [ (import ./common/sector.nix { inherit self pkgs; }) ];
    services.paramant.domain = "b.test";
    services.paramant.ctlogAllowedIPs = [ "any" ];
    services.paramant.ctlog.health = {
      listenAddress = "0.0.0.0";
      openFirewall = true;
      settings.gossip = {
        push_interval_secs = 2;
        peer = [{ relay_id = "health.a.test"; public_key = sharedPublicKey; url = "http://a:8101"; }];
      };
    };
  };
  testScript = builtins.readFile ./common/helpers.py + ''
    start_all()
    for m in (a, forker, b):
        wait_for_sector(m)
    assert get_json(a, "http://127.0.0.1:8101/v2/pubkey")["public_key"] == "${sharedPublicKey}"
    assert get_json(forker, "http://127.0.0.1:8101/v2/pubkey")["public_key"] == "${sharedPublicKey}"

    # b pushes its head to its configured peer a: a now knows b.
    b_pk = get_json(b, "http://127.0.0.1:8101/v2/pubkey")["pk_hash"]
    a.wait_until_succeeds(f"curl -fsS http://127.0.0.1:8101/v2/sth/peers | grep -q {b_pk}")

    def head(m):
        head_ = sth(m, "http://127.0.0.1:8101")
        body = {k: head_[k] for k in ("relay_id", "sha3_root", "timestamp", "tree_size", "version", "signature")}
        body["public_key"] = "${sharedPublicKey}"
        return body

    append(a)
    append(forker)
    ha, hf = head(a), head(forker)
    assert ha["tree_size"] == hf["tree_size"] and ha["sha3_root"] != hf["sha3_root"], (ha, hf)
    assert post_json(b, "http://127.0.0.1:8101/v2/sth/ingest", ha)["ok"] is True
    status = b.succeed(
        "curl -s -o /tmp/fork.json -w '%{http_code}' -X POST -H 'content-type: application/json' "
        f"-d '{json.dumps(hf)}' http://127.0.0.1:8101/v2/sth/ingest").strip()
    assert status == "409", status
    assert json.loads(b.succeed("cat /tmp/fork.json"))["error"] == "fork_detected"
    forks = get_json(b, "http://127.0.0.1:8101/v2/sth/forks")
    assert forks["count"] >= 1, forks
  '';
}

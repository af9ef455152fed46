# Boot and serve: the health sector's log and relay start from the flake's modules under their
# dynamic users; the relay answers another machine through the firewall, the log's own ports do
# not; the log's CT reads are served on the relay's origin; nothing failed.
{ self, pkgs, ... }:
{
  name = "boot-and-serve";
  nodes.machine = import ./common/sector.nix { inherit self pkgs; };
  nodes.client = { pkgs, ... }: { environment.systemPackages = [ pkgs.curl ]; };
  testScript = builtins.readFile ./common/helpers.py + ''
    start_all()
    wait_for_sector(machine)
    machine.succeed("systemctl is-active paramant.target paramant-secrets.service")
    for unit in ("paramant-ctlog@health", "paramant-relay@health"):
        user = machine.succeed(f"systemctl show -P User {unit}.service").strip()
        assert user == unit.replace("@", "-"), user
        machine.succeed(f"ps -o user= -C {'paramant-ctlog' if 'ctlog' in unit else 'paramant-relay'} | grep -qx '{user}'")
    client.wait_until_succeeds("curl -fsS http://machine:8001/health")
    caps = get_json(client, "http://machine:8001/v2/capabilities")
    assert caps, caps
    sth_ = sth(client, "http://machine:8001")
    assert sth_["tree_size"] >= 0 and len(sth_["sha3_root"]) == 64, sth_
    # The log listens on loopback and its port is closed in the firewall.
    client.fail("curl -fsS --max-time 5 http://machine:8101/v2/sth")
    client.fail("curl -fsS --max-time 5 http://machine:8301/internal/keys")
    machine.fail("systemctl --failed --no-legend | grep .")
  '';
}

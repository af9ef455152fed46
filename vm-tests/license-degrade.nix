# License degrade: an appliance whose license check-in cannot reach the license server keeps its
# licensed capabilities through the 7-day grace period (ADR R013) and then falls back to the
# Community plan — announced in the relay's capabilities, enforced, and logged.
#
# PROVISIONAL — written on the `nix` branch before the license service existed (issue 11). The
# state it reads (`/v2/capabilities` field `edition`) and the way the clock is moved are
# assumptions; ALIGN AT MERGE with crates/license.
{ self, pkgs, ... }:
{
  name = "license-degrade";
  nodes.machine = { ... }: {
    imports = [ (import ./common/sector.nix { inherit self pkgs; }) self.nixosModules.license ];
    services.paramant.license = {
      enable = true;
      # Nothing listens there: every check-in fails.
      serverUrl = "https://license.invalid";
    };
    # The clock is moved by the test.
    services.timesyncd.enable = false;
  };
  testScript = builtins.readFile ./common/helpers.py + ''
    start_all()
    wait_for_sector(machine)
    machine.succeed("systemctl start paramant-license.service || true")
    first = get_json(machine, "http://127.0.0.1:8001/v2/capabilities")
    # Within the grace period: still what the cache says.
    machine.succeed("date -s '+6 days'")
    machine.succeed("systemctl start paramant-license.service || true")
    assert get_json(machine, "http://127.0.0.1:8001/v2/capabilities").get("edition") == first.get("edition")
    # Past it: Community.
    machine.succeed("date -s '+2 days'")
    machine.succeed("systemctl start paramant-license.service || true")
    machine.wait_until_succeeds("curl -fsS http://127.0.0.1:8001/v2/capabilities | grep -q '\"edition\":\"community\"'")
    machine.succeed("journalctl -u paramant-license.service | grep -i community")
  '';
}

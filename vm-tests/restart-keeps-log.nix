# Restart keeps the log: leaves appended before `systemctl restart`, a SIGKILL and a reboot are
# all still there, under the same key, and the old head is consistent with the new one; the
# relay's API key minted before survives too.
{ self, pkgs, ... }:
{
  name = "restart-keeps-log";
  nodes.machine = import ./common/sector.nix { inherit self pkgs; };
  testScript = builtins.readFile ./common/helpers.py + ''
    start_all()
    wait_for_sector(machine)
    key = mint_key(machine)
    for _ in range(3):
        append(machine)
    before = sth(machine, "http://127.0.0.1:8101")
    pub = get_json(machine, "http://127.0.0.1:8101/v2/pubkey")["public_key"]
    assert before["tree_size"] >= 3, before

    def still_there(what):
        wait_for_sector(machine)
        now = sth(machine, "http://127.0.0.1:8101")
        assert now["tree_size"] >= before["tree_size"], (what, now)
        assert get_json(machine, "http://127.0.0.1:8101/v2/pubkey")["public_key"] == pub, what
        proof = get_json(machine, f"http://127.0.0.1:8101/v2/sth/consistency?from={before['tree_size']}&to={now['tree_size']}")
        assert proof, (what, proof)
        assert get_json(machine, "http://127.0.0.1:8001/v2/check-key", [f"X-Api-Key: {key}"])["valid"] is True, what

    machine.succeed("systemctl restart paramant-ctlog@health.service paramant-relay@health.service")
    still_there("systemctl restart")
    restarts = int(machine.succeed("systemctl show -P NRestarts paramant-ctlog@health.service"))
    machine.succeed("systemctl kill -s KILL paramant-ctlog@health.service")
    machine.wait_until_succeeds(f"test $(systemctl show -P NRestarts paramant-ctlog@health.service) -gt {restarts}")
    still_there("SIGKILL")
    machine.shutdown()
    machine.start()
    still_there("reboot")
  '';
}

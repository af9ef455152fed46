# The published Python SDK (paramant-sdk 3.0.0, unmodified) against the NixOS relay: register a
# device, send, status, receive (burns), a second receive fails, the receipt verifies — the same
# script the Debian systemd harness runs (harness/debian-systemd/guest/sdk-round-trip).
{ self, pkgs, ... }:
{
  name = "sdk-round-trip";
  nodes.machine = import ./common/sector.nix { inherit self pkgs; };
  testScript = builtins.readFile ./common/helpers.py + ''
    start_all()
    wait_for_sector(machine)
    key = mint_key(machine)
    out = machine.succeed(
        f"paramant-sdk-python ${../harness/debian-systemd/guest/sdk-round-trip} http://127.0.0.1:8001 {key} vm-device")
    assert "receipt valid" in out, out
    # The transfer and its burn are in the log: two leaves at least.
    assert sth(machine, "http://127.0.0.1:8001")["tree_size"] >= 2
  '';
}

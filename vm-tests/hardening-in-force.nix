# Hardening in force inside NixOS: `systemd-analyze security` scores each unit at most 1.5 (as
# scripts/render-units.sh does offline), landlock is fully enforced (the services' own /health
# report), and the processes run with no capability, no_new_privs and a seccomp filter.
{ self, pkgs, ... }:
{
  name = "hardening-in-force";
  nodes.machine = import ./common/sector.nix { inherit self pkgs; };
  testScript = builtins.readFile ./common/helpers.py + ''
    start_all()
    wait_for_sector(machine)
    for unit in ("paramant-ctlog@health.service", "paramant-relay@health.service", "paramant-secrets.service"):
        machine.succeed(f"systemd-analyze security --threshold=15 {unit}")
    for url in ("http://127.0.0.1:8101/health", "http://127.0.0.1:8001/health"):
        sandbox = get_json(machine, url)["sandbox"]
        assert sandbox["landlock"] == "fully_enforced", (url, sandbox)
    for exe in ("paramant-ctlog", "paramant-relay"):
        pid = machine.succeed(f"pgrep -x {exe}").strip()
        status = machine.succeed(f"cat /proc/{pid}/status")
        assert "NoNewPrivs:\t1" in status, status
        assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status, status
        assert "Seccomp:\t2" in status, status
  '';
}

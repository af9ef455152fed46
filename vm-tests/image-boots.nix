# The image itself boots in qemu (UEFI, systemd-boot, UKI): the store is dm-verity protected and
# read-only, / is a tmpfs, the state partition is created and grown on first boot, first-boot
# secrets and the TLS certificate exist, every relay serves HTTPS, only the relay ports are open,
# no SSH, no password, a persistent journal; a reboot keeps the state.
{ self, ... }:
{
  name = "image-boots";
  nodes.machine = import ./common/appliance.nix { inherit self; };
  nodes.client = { pkgs, ... }: { environment.systemPackages = [ pkgs.curl pkgs.nmap ]; };
  testScript = { nodes, ... }: builtins.readFile ./common/disk.py + ''
    use_disk_image("${nodes.machine.virtualisation.qemu.package}/bin/qemu-img",
                   "${nodes.machine.system.build.finalImage}/${nodes.machine.image.repart.imageFile}")
    start_all()
    machine.wait_for_unit("paramant.target")
    machine.wait_for_unit("paramant-health.service")

    with subtest("read-only verity store, volatile root"):
        assert "ACTIVE" in machine.succeed("dmsetup info --target verity usr")
        assert machine.succeed("df --output=source /nix/store | tail -n1").strip() == "/dev/mapper/usr"
        machine.succeed("findmnt --kernel --type tmpfs /")
        machine.fail("touch /nix/store/x")

    with subtest("state partition made and grown on first boot"):
        size = int(machine.succeed("lsblk -bno SIZE /dev/disk/by-partlabel/state").strip())
        assert size > 6 * 1024**3, size

    with subtest("first boot: tokens, TLS certificate, log keys"):
        machine.succeed("test -s /var/lib/credstore/paramant-health.ctlog-internal-token")
        machine.succeed("test -s /var/lib/paramant-tls/cert.pem")
        machine.succeed("test -s /var/lib/private/paramant-ctlog-health/log-key")

    with subtest("every relay serves HTTPS; nothing else is reachable"):
        for port in range(8000, 8005):
            machine.wait_until_succeeds(f"curl -fsSk https://127.0.0.1:{port}/health")
            client.succeed(f"curl -fsSk https://machine:{port}/health")
        open_ports = client.succeed("nmap -Pn -p 1-65535 --open -oG - machine | grep -o '[0-9]*/open' | sort -n")
        assert open_ports.split() == [f"{p}/open" for p in range(8000, 8005)], open_ports

    with subtest("no SSH, no password, persistent journal"):
        machine.fail("systemctl is-active sshd.service")
        machine.succeed("grep -q '^root:!:' /etc/shadow")
        machine.succeed("test -d /var/log/journal/$(cat /etc/machine-id)")

    with subtest("a reboot keeps the state"):
        machine_id = machine.succeed("cat /etc/machine-id")
        token = machine.succeed("cat /var/lib/credstore/paramant-health.ctlog-internal-token")
        machine.reboot()
        machine.wait_for_unit("paramant.target")
        assert machine.succeed("cat /etc/machine-id") == machine_id
        assert machine.succeed("cat /var/lib/credstore/paramant-health.ctlog-internal-token") == token
  '';
}

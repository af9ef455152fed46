# Updates the appliance way, from version 1 to 2, and a rollback from a bad 3:
#   - releases 2 and 3 are real artifacts of this image (UKI, store and verity partitions),
#     signed with the TEST release keys (fixtures/);
#   - an offered release is not installed without the operator's approval;
#   - a release whose signature does not verify is refused even when approved;
#   - `paramant-update approve 2` installs 2 into the B slot with systemd-sysupdate; after a
#     reboot 2 runs and is blessed (boot-complete.target reached);
#   - 3 has a relay that never becomes healthy: paramant-health fails, the boot is not blessed,
#     the UKI's tries run out and systemd-boot starts 2 again.
{ self, pkgs, lib, ... }:
let
  base = "${pkgs.path}/nixos/modules";
  # A release of this very appliance (with the test instrumentation, so the driver can talk to
  # it after the update) at `version`.
  build = version: modules: (pkgs.nixos {
    imports = [
      (import ./common/appliance.nix { inherit self version modules; })
      "${base}/testing/test-instrumentation.nix"
      "${base}/virtualisation/qemu-vm.nix"
    ];
  }).config.system.build;
  # TEST ONLY: signed with the published fixture keys.
  release = version: modules:
    let b = build version modules; in
    pkgs.runCommand "paramantOS-release-${version}" { nativeBuildInputs = [ self.packages.${pkgs.stdenv.hostPlatform.system}.paramant ]; } ''
      mkdir -p $out
      cp ${b.finalImage}/paramantOS_${version}.store.raw ${b.finalImage}/paramantOS_${version}.store-verity.raw $out/
      cp ${b.uki}/paramantOS_${version}.efi $out/
      paramant release sign --keys ${../fixtures/release-test-keys} --version ${version} \
        --source-commit ${lib.fixedWidthString 40 "0" ""} --toolchain "nixpkgs rustc" \
        --cargo-lock ${../Cargo.lock} --flake-lock ${../flake.lock} --out $out $out/paramantOS_*
    '';
  good = release "2" [ ];
  # Release 3's relay exits at once: the appliance never becomes healthy.
  bad = release "3" [{
    systemd.services."paramant-relay@health" = {
      overrideStrategy = "asDropin";
      serviceConfig.ExecStart = lib.mkForce [ "" "${pkgs.coreutils}/bin/false" ];
    };
  }];
in
{
  name = "sysupdate-and-rollback";
  nodes.machine = import ./common/appliance.nix { inherit self; version = "1"; };
  testScript = { nodes, ... }: builtins.readFile ./common/disk.py + ''
    use_disk_image("${nodes.machine.virtualisation.qemu.package}/bin/qemu-img",
                   "${nodes.machine.system.build.finalImage}/${nodes.machine.image.repart.imageFile}")

    def offer(release, version):
        """What `paramant-update check` leaves behind after downloading and verifying a release."""
        machine.succeed(f"rm -rf /var/lib/paramant-update/offered-{version} && mkdir -p /var/lib/paramant-update")
        machine.succeed(f"cp -r {release} /var/lib/paramant-update/offered-{version}")
        machine.succeed(f"paramant release verify --public-keys ${../fixtures/release-test-keys/paramant-release.pub} /var/lib/paramant-update/offered-{version}/manifest.json")
        machine.succeed(f"echo {version} > /var/lib/paramant-update/offered")

    def version():
        return machine.succeed(". /etc/os-release; echo $IMAGE_VERSION").strip()

    machine.start()
    machine.wait_for_unit("boot-complete.target")
    assert version() == "1"

    with subtest("nothing is installed without approval"):
        offer("${good}", "2")
        machine.fail("paramant-update approve 3")
        machine.succeed("test ! -e /var/lib/paramant-update/approved")
        machine.fail("ls /boot/EFI/Linux | grep paramantOS_2")

    with subtest("a tampered release is refused even when approved"):
        machine.succeed("printf x >> /var/lib/paramant-update/offered-2/paramantOS_2.efi")
        machine.fail("paramant-update approve 2")
        machine.fail("ls /boot/EFI/Linux | grep paramantOS_2")

    with subtest("an approved, verified release is installed into the other slot and kept when healthy"):
        offer("${good}", "2")
        machine.succeed("paramant-update approve 2")
        machine.succeed("ls /boot/EFI/Linux | grep -q 'paramantOS_2+3'")
        machine.reboot()
        machine.wait_for_unit("boot-complete.target")
        assert version() == "2"
        machine.wait_until_succeeds("ls /boot/EFI/Linux | grep -qx 'paramantOS_2.efi'")

    with subtest("an unhealthy release rolls back to the previous one"):
        offer("${bad}", "3")
        machine.succeed("paramant-update approve 3")
        # 3 boots, fails its health check and reboots itself until its tries are used up.
        machine.reboot()
        machine.wait_for_unit("multi-user.target", timeout=1800)
        machine.wait_until_succeeds(". /etc/os-release; test \"$IMAGE_VERSION\" = 2", timeout=1800)
        machine.succeed("ls /boot/EFI/Linux | grep -q 'paramantOS_3+0-3'")
  '';
}

# A VM node that boots the paramantOS disk image itself (not the test framework's usual direct
# kernel boot): UEFI firmware → systemd-boot → UKI → dm-verity store, as on hardware.
# `version` overrides the image version; `modules` are added (the sysupdate test breaks one).
{ self, version ? null, modules ? [ ] }:
{ lib, ... }:
{
  imports = [ self.nixosModules.paramantOS ../../image ] ++ modules;
  system.image.version = lib.mkIf (version != null) (lib.mkForce version);
  virtualisation = {
    fileSystems = lib.mkVMOverride (import ../../image/filesystems.nix);
    directBoot.enable = false;
    mountHostNixStore = false;
    useEFIBoot = true;
    memorySize = 2048;
  };
  # TEST ONLY: the updater trusts the published fixture keys (../../fixtures/README.md).
  paramantOS.update = {
    publicKeys = ../../fixtures/release-test-keys/paramant-release.pub;
    source = "https://releases.invalid/paramantOS";
  };
}

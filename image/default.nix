# paramantOS as a disk image (nixpkgs `image.repart`): a GPT disk with an ESP (systemd-boot and
# the unified kernel image), the Nix store read-only on erofs under dm-verity (the UKI carries
# the root hash, so a changed byte stops the boot), an empty second store slot for A/B updates,
# and the state partition, created and grown to the disk on first boot by systemd-repart.
# The root file system is a tmpfs: everything that persists is on the state partition (/var).
#
# Build on a connected Nix machine: `nix build .#image` (README "The Nix side").
{ config, lib, pkgs, modulesPath, ... }:
let
  inherit (config.image.repart.verityStore) partitionIds;
  efiArch = pkgs.stdenv.hostPlatform.efiArch;
  # Each store slot is as large as the store partition of this build plus headroom, so that
  # the next releases fit into the other slot (sysupdate writes whole partitions).
  storeSlotSize = "3G";
  veritySlotSize = "256M";
in
{
  imports = [
    "${modulesPath}/image/repart.nix"
    ./first-boot.nix
    ./updates.nix
  ];

  system.image = {
    id = "paramantOS";
    version = (lib.importTOML ../Cargo.toml).workspace.package.version;
  };
  system.stateVersion = "25.11";
  networking.hostName = lib.mkDefault "paramant";

  image.repart = {
    name = "paramantOS";
    verityStore.enable = true;
    # Also write each partition to its own file: paramantOS_<version>.store.raw and
    # .store-verity.raw are, with the UKI, the release artifacts sysupdate installs (./updates.nix).
    split = true;
    partitions = {
      ${partitionIds.esp} = {
        contents = {
          "/EFI/BOOT/BOOT${lib.toUpper efiArch}.EFI".source = "${pkgs.systemd}/lib/systemd/boot/efi/systemd-boot${efiArch}.efi";
          # Boot the newest UKI that has tries left; a UKI whose tries ran out is skipped.
          "/loader/loader.conf".source = pkgs.writeText "loader.conf" "timeout 0\n";
        };
        repartConfig = { Type = "esp"; Format = "vfat"; SizeMinBytes = "256M"; };
      };
      ${partitionIds.store-verity}.repartConfig = {
        SizeMinBytes = veritySlotSize;
        SizeMaxBytes = veritySlotSize;
        Label = "store-verity_${config.system.image.version}";
        SplitName = "store-verity";
      };
      ${partitionIds.store}.repartConfig = {
        SizeMinBytes = storeSlotSize;
        SizeMaxBytes = storeSlotSize;
        # sysupdate finds versions by partition label: store_<version>.
        Label = "store_${config.system.image.version}";
        SplitName = "store";
      };
      # The B slots: empty partitions of the same types, labelled "_empty" as sysupdate expects.
      "30-store-verity-b".repartConfig = {
        Type = "usr-${pkgs.stdenv.hostPlatform.linuxArch}-verity";
        Label = "_empty";
        SizeMinBytes = veritySlotSize;
        SizeMaxBytes = veritySlotSize;
      };
      "31-store-b".repartConfig = {
        Type = "usr-${pkgs.stdenv.hostPlatform.linuxArch}";
        Label = "_empty";
        SizeMinBytes = storeSlotSize;
        SizeMaxBytes = storeSlotSize;
      };
    };
  };

  # Boot: systemd in the initrd (dm-verity for /usr, repart for the state partition), the UKI.
  boot.loader.grub.enable = false;
  boot.initrd.systemd.enable = true;

  # First boot: systemd-repart adds the state partition behind the image's partitions and grows
  # it to the end of the disk; later boots find it and leave it as it is.
  boot.initrd.systemd.repart.enable = true;
  # The root is a tmpfs, so repart is told the disk: the first one the kernel found.
  boot.initrd.systemd.repart.device = lib.mkDefault "/dev/disk/by-diskseq/1";
  systemd.repart.partitions."40-state" = {
    Type = "linux-generic";
    Format = "ext4";
    Label = "state";
    SizeMinBytes = "2G";
    # Fill the disk; a larger disk later grows the file system at the next boot.
    GrowFileSystem = true;
  };

  fileSystems = import ./filesystems.nix;
  # The credential store's home on the state partition, made in the initrd (right after /var is
  # mounted there) so that the /etc/credstore bind mount finds it on the first boot.
  boot.initrd.systemd.tmpfiles.settings.paramant-credstore."/sysroot/var/lib/credstore".d = { mode = "0700"; };

  # A read-only system: no Nix daemon, no channels, no activation-time /usr/bin/env.
  nix.enable = false;
  system.switch.enable = false;
  system.activationScripts.usrbinenv = lib.mkForce "";
  # The machine id lives with the state (the journal is keyed by it): systemd writes the id it
  # generates on the first boot through this link, and reads it back on every later boot.
  environment.etc."machine-id".source = "/var/lib/machine-id";
}

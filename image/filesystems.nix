# The appliance's file systems (a plain attrset, so the VM tests can boot the image with the
# same ones): a tmpfs root, the store from the dm-verity protected /usr partition, state and
# secrets on the state partition.
{
  "/" = { fsType = "tmpfs"; options = [ "mode=0755" "size=25%" ]; };
  "/var" = { device = "/dev/disk/by-partlabel/state"; fsType = "ext4"; neededForBoot = true; };
  "/nix/store" = { device = "/usr/nix/store"; fsType = "none"; options = [ "bind" ]; };
  # Secrets persist with the state; units read them through LoadCredential=.
  "/etc/credstore" = { device = "/var/lib/credstore"; fsType = "none"; options = [ "bind" "x-systemd.requires-mounts-for=/var" ]; };
}

# The paramant NixOS modules, as the flake exports them (`nixosModules.<name>`). Each service
# module imports ./common.nix (the package, the shared options, the unit data); `paramantOS` is
# the appliance profile on top of all of them.
{
  ctlog = { imports = [ ./common.nix ./ctlog.nix ]; };
  relay = { imports = [ ./common.nix ./ctlog.nix ./relay.nix ]; };
  admin = { imports = [ ./common.nix ./ctlog.nix ./relay.nix ./admin.nix ]; };
  license = { imports = [ ./common.nix ./ctlog.nix ./relay.nix ./license.nix ]; };
  paramantOS = { imports = [ ./common.nix ./ctlog.nix ./relay.nix ./admin.nix ./license.nix ./paramantOS.nix ]; };
}

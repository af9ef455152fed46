# paramantOS, the service side of the appliance: every sector's log and relay, the relays' ports
# (and nothing else) open, no SSH, no password anywhere, a persistent journal. The disk image,
# its A/B updates and first-boot setup are in ../image/ (they need nixpkgs; this file is
# evaluated in CI with lib.evalModules alone).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.paramantOS;
in
{
  options.paramantOS = {
    sectors = mkOption {
      type = types.listOf (types.enum [ "relay" "health" "legal" "finance" "iot" ]);
      default = [ "relay" "health" "legal" "finance" "iot" ];
      description = "Sectors this appliance serves: one log and one relay each.";
    };
    ssh.enable = mkOption {
      type = types.bool;
      default = false;
      description = "Allow SSH (key-only; no password exists). Off on the appliance.";
    };
  };

  config = {
    services.paramant = {
      ctlog = lib.genAttrs cfg.sectors (_: { });
      relays = lib.genAttrs cfg.sectors (_: { openFirewall = true; });
    };

    networking.firewall.enable = true;
    services.openssh.enable = lib.mkDefault cfg.ssh.enable;
    services.openssh.settings.PasswordAuthentication = false;

    # Nobody logs in with a password: accounts are declared here only, root's is locked.
    users.mutableUsers = false;
    users.users.root.hashedPassword = "!";

    services.journald.storage = "persistent";

    assertions = [{
      assertion = config.users.users.root.hashedPassword == "!" && !config.users.mutableUsers;
      message = "paramantOS ships no password: keep users.users.root.hashedPassword = \"!\" and users.mutableUsers = false; use SSH keys (paramantOS.ssh.enable) for access.";
    }];
  };
}

# TEST ONLY: a small declaration of the NixOS options the paramant modules set, mirroring
# NixOS's own types (nixos/lib/systemd-unit-options.nix, nixos/modules/system/etc/etc.nix,
# nixos/modules/services/networking/firewall.nix, nixos/modules/misc/assertions.nix, …), so
# that CI can evaluate the modules with nixpkgs' real lib.evalModules without all of NixOS.
# It declares; it renders nothing. tests/eval.nix renders units from it the way NixOS does.
{ lib, ... }:
let
  inherit (lib) mkOption types;

  # NixOS's unitOption: a scalar or a list; lists from several definitions concatenate.
  unitOption = lib.mkOptionType {
    name = "systemd option";
    check = v: builtins.isBool v || builtins.isInt v || builtins.isString v || builtins.isPath v
      || builtins.isList v || lib.isDerivation v;
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.any (d: builtins.isList d.value) defs'
      then lib.concatMap (d: lib.toList d.value) defs'
      else lib.mergeEqualOption loc defs';
  };
  unitSettings = mkOption { type = types.attrsOf unitOption; default = { }; };
  unitList = mkOption { type = types.listOf types.str; default = [ ]; };

  commonUnit = {
    enable = mkOption { type = types.bool; default = true; };
    description = mkOption { type = types.str; default = ""; };
    wantedBy = unitList;
    requiredBy = unitList;
    before = unitList;
    after = unitList;
    wants = unitList;
    requires = unitList;
    partOf = unitList;
    unitConfig = unitSettings;
    overrideStrategy = mkOption {
      type = types.enum [ "asDropinIfExists" "asDropin" ];
      default = "asDropinIfExists";
    };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf (types.submodule {
        options.assertion = mkOption { type = types.bool; };
        options.message = mkOption { type = types.str; };
      });
      default = [ ];
    };
    warnings = mkOption { type = types.listOf types.str; default = [ ]; };

    systemd.services = mkOption {
      type = types.attrsOf (types.submodule {
        options = commonUnit // {
          serviceConfig = unitSettings;
          environment = mkOption { type = types.attrsOf types.str; default = { }; };
          path = mkOption { type = types.listOf types.package; default = [ ]; };
          script = mkOption { type = types.lines; default = ""; };
        };
      });
      default = { };
    };
    systemd.targets = mkOption {
      type = types.attrsOf (types.submodule { options = commonUnit; });
      default = { };
    };
    systemd.timers = mkOption {
      type = types.attrsOf (types.submodule { options = commonUnit // { timerConfig = unitSettings; }; });
      default = { };
    };

    users.mutableUsers = mkOption { type = types.bool; default = true; };
    users.users = mkOption {
      type = types.attrsOf (types.submodule {
        options.hashedPassword = mkOption { type = types.nullOr types.str; default = null; };
        options.isSystemUser = mkOption { type = types.bool; default = false; };
        options.group = mkOption { type = types.str; default = ""; };
      });
      default = { };
    };

    users.groups = mkOption {
      type = types.attrsOf (types.submodule { options.gid = mkOption { type = types.nullOr types.int; default = null; }; });
      default = { };
    };

    networking.firewall.enable = mkOption { type = types.bool; default = true; };
    networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; };
    networking.firewall.allowedUDPPorts = mkOption { type = types.listOf types.port; default = [ ]; };

    environment.etc = mkOption {
      type = types.attrsOf (types.submodule {
        options.text = mkOption { type = types.nullOr types.lines; default = null; };
        options.source = mkOption { type = types.nullOr types.path; default = null; };
        options.mode = mkOption { type = types.str; default = "symlink"; };
      });
      default = { };
    };

    system.checks = mkOption { type = types.listOf types.package; default = [ ]; };

    services.openssh.enable = mkOption { type = types.bool; default = false; };
    services.openssh.settings = mkOption { type = types.attrsOf types.anything; default = { }; };
    services.journald.storage = mkOption {
      type = types.enum [ "persistent" "volatile" "auto" "none" ];
      default = "persistent";
    };
  };
}

# What every paramant service module shares: `services.paramant.{package, domain, landlock,
# watchdogSec, …}`, the unit data from ./lib/units.nix (the builtins-only source of truth that
# scripts/render-units.sh and the Debian systemd harness evaluate too), paramant.target, the
# paramant-secrets oneshot, and helpers the per-service modules use (`_module.args.paramant`).
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.paramant;
  toTOML = (import ./lib/toml.nix).toTOML;

  knownSectors = [ "relay" "health" "legal" "finance" "iot" ];
  # Sector n's default ports, from the unit data itself (relay 8000+n, log 8100+n / 8200+n, …).
  defaultPorts = (import ./lib/units.nix { sectors = knownSectors; }).ports;

  enabledSectors = attrs: lib.filter (s: attrs.${s}.enable && lib.elem s knownSectors) (lib.attrNames attrs);
  ctlogSectors = enabledSectors cfg.ctlog;
  relaySectors = enabledSectors cfg.relays;
  # In units.nix order, so the target lists instances as the harness's target does.
  sectors = lib.filter (s: lib.elem s (ctlogSectors ++ relaySectors)) knownSectors;

  secretsScript = pkgs.writeShellScript "paramant-secrets" unitData.secretsScript;

  # admin.nix and license.nix declare these; a machine importing only ctlog/relay has neither.
  admin = cfg.admin or { enable = false; };
  license = cfg.license or { enable = false; };
  # The sector whose log records the check-ins: chosen, else the first enabled one.
  licenseSector = if license.sector != null then license.sector
    else if sectors != [ ] then lib.head sectors else lib.head knownSectors;
  packageOf = m: if m.package != null then m.package else cfg.package;

  unitData = import ./lib/units.nix ({
    inherit sectors;
    services = [ "ctlog" "relay" ] ++ lib.optional admin.enable "admin" ++ lib.optional license.enable "license";
    ctlogExe = "${cfg.package}/bin/paramant-ctlog";
    relayExe = "${cfg.package}/bin/paramant-relay";
    secretsExe = "${secretsScript}";
    inherit (cfg) domain landlock watchdogSec logKeyCredential ctlogAllowedIPs relayAllowedIPs;
    ctlogSettings = s: if cfg.ctlog ? ${s} then cfg.ctlog.${s}.finalSettings else { };
    relaySettings = s: if cfg.relays ? ${s} then cfg.relays.${s}.finalSettings else { };
  } // lib.optionalAttrs admin.enable {
    adminExe = "${packageOf admin}/bin/paramant-admin";
    adminListen = "${admin.listenAddress}:${toString admin.port}";
    adminInternalListen = "127.0.0.1:${toString admin.internalPort}";
    adminPublicUrl = if admin.publicUrl != null then admin.publicUrl
      else "http://${admin.listenAddress}:${toString admin.port}";
    adminSettings = admin.settings;
  } // lib.optionalAttrs license.enable {
    licenseExe = "${packageOf license}/bin/paramant-license";
    licenseServerUrl = license.serverUrl;
    inherit licenseSector;
    licenseTelemetry = license.telemetry;
    licenseSettings = license.settings;
  } // lib.optionalAttrs (license.enable && license.licenseFile != null) {
    licenseTokenCredential = toString license.licenseFile;
  });

  # Systemd credentials are handed to a unit under /run/credentials/<unit>/<id>.
  credentialPath = unit: id: "/run/credentials/${unit}/${id}";

  # A secret option: an absolute path, read by systemd (LoadCredential) at start, never copied.
  secretOption = what: example: mkOption {
    type = types.nullOr types.path;
    default = null;
    inherit example;
    description = ''
      Path of ${what}, read by systemd at service start (`LoadCredential=`). Give it as a string
      outside the Nix store, e.g. from agenix, sops-nix or systemd-creds (see secrets/README.md).
    '';
  };

  # Assertions for a secret path: not a Nix path literal (it would be copied into the store),
  # not in the store (world-readable).
  secretAssertions = option: value: lib.optionals (value != null) [
    {
      assertion = !(builtins.isPath value);
      message = "${option} is the Nix path ${toString value}; Nix copies such paths into the world-readable store. Give it as a string outside the store, e.g. \"/run/agenix/paramant-key\" (see secrets/README.md).";
    }
    {
      assertion = !(lib.hasPrefix "${builtins.storeDir}/" (toString value));
      message = "${option} = \"${toString value}\" is in the Nix store, which every local user can read. Keep the secret outside the store (agenix, sops-nix or systemd-creds: see secrets/README.md) and give its path as a string.";
    }
  ];

  # Replaces credential ids in a LoadCredential list; the leading "" resets the template's list
  # (systemd ignores a second definition of the same id).
  overrideCredentials = base: overrides:
    [ "" ] ++ map (entry:
      let id = lib.head (lib.splitString ":" entry);
      in if overrides ? ${id} then "${id}:${overrides.${id}}" else entry) base;

  # RFC 42: settings are free-form TOML values; declared options win where they overlap.
  settingsType = let
    valueType = types.nullOr (types.oneOf [
      types.bool types.int types.str types.path (types.attrsOf valueType) (types.listOf valueType)
    ]) // { description = "TOML value"; };
  in types.submodule { freeformType = types.attrsOf valueType; };

  portAssertions = let
    claims = lib.concatMap (s: [
      { option = "services.paramant.ctlog.${s}.port"; port = cfg.ctlog.${s}.port; }
      { option = "services.paramant.ctlog.${s}.internalPort"; port = cfg.ctlog.${s}.internalPort; }
    ]) ctlogSectors ++ lib.concatMap (s: [
      { option = "services.paramant.relays.${s}.port"; port = cfg.relays.${s}.port; }
      { option = "services.paramant.relays.${s}.internalPort"; port = cfg.relays.${s}.internalPort; }
    ]) relaySectors ++ cfg.extraPortClaims;
    clashes = c: lib.filter (o: o.port == c.port && o.option != c.option) claims;
  in map (c: {
    assertion = clashes c == [ ];
    message = "${c.option} = ${toString c.port} is also ${(lib.head (clashes c ++ [ c ])).option}; give each listener its own port.";
  }) claims ++ map (c: {
    assertion = c.port > 1023;
    message = "${c.option} = ${toString c.port} needs CAP_NET_BIND_SERVICE, which the sandbox drops; use a port above 1023 (and forward 443 to it with the firewall or a reverse proxy).";
  }) claims;
in
{
  options.services.paramant = {
    package = mkOption {
      type = types.package;
      default = pkgs.paramant;
      defaultText = lib.literalExpression "pkgs.paramant";
      description = "The paramant package (paramant, paramant-ctlog, paramant-relay binaries) the units run.";
    };
    domain = mkOption {
      type = types.str;
      default = "paramant.local";
      example = "paramant.example.org";
      description = "Each log's default relay_id is \"<sector>.<domain>\".";
    };
    landlock = mkOption {
      type = types.enum [ "required" "best-effort" ];
      default = "required";
      description = "\"required\": a service refuses to start unless landlock is fully enforced.";
    };
    watchdogSec = mkOption {
      type = types.ints.positive;
      default = 10;
      description = "systemd watchdog; a wedged event loop is killed and restarted.";
    };
    logKeyCredential = mkOption {
      type = types.enum [ "plain" "encrypted" ];
      default = "plain";
      description = "How log keys in the credential store are read: plain files, or systemd-creds encrypted (`LoadCredentialEncrypted=`).";
    };
    ctlogAllowedIPs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "192.0.2.10" ];
      description = "Addresses beyond localhost the logs may talk to (gossip peers); `IPAddressAllow=`.";
    };
    relayAllowedIPs = mkOption {
      type = types.listOf types.str;
      default = [ "any" ];
      description = "`IPAddressAllow=` of the relays (they serve the public).";
    };
    extraTargetWants = mkOption {
      type = types.listOf types.str;
      default = [ ];
      internal = true;
      description = "Units of other paramant modules (admin, license) that paramant.target wants.";
    };
    extraPortClaims = mkOption {
      type = types.listOf (types.submodule {
        options.option = mkOption { type = types.str; };
        options.port = mkOption { type = types.port; };
      });
      default = [ ];
      internal = true;
      description = "Ports other paramant modules listen on, checked for clashes with the sector units'.";
    };
  };

  config = lib.mkMerge [
    {
      _module.args.paramant = rec {
        inherit knownSectors defaultPorts licenseSector settingsType secretOption secretAssertions credentialPath
          overrideCredentials toTOML unitData;
        # The check derivation `system.checks` builds: the service's own `check-config` on the
        # rendered file. Landlock is judged on the builder, whose kernel is not the appliance's,
        # so the copy checked says best-effort; the unit enforces `required` when it starts.
        checkConfig = { name, exe, settings }: pkgs.runCommand "paramant-${name}-check-config" { } ''
          ${exe} check-config --config ${pkgs.writeText "${name}.toml"
            (toTOML (lib.recursiveUpdate settings { sandbox.landlock = "best-effort"; }))} > $out
        '';
        # What a per-sector template module (ctlog, relay) configures for its enabled sectors:
        # the template unit `paramant-<kind>@`, a drop-in for each instance that needs one, its
        # /etc/paramant/<kind>/<sector>.toml, firewall ports and a check-config derivation each.
        sectorUnits = { kind, cfg, sectors, template, dropIn, rendered, defaultPackage }: {
          systemd.services = {
            "paramant-${kind}@" = {
              unitConfig = template.Unit;
              serviceConfig = template.Service;
            };
          } // lib.listToAttrs (map (s: {
            name = "paramant-${kind}@${s}";
            value = { overrideStrategy = "asDropin"; serviceConfig = dropIn s; };
          }) (lib.filter (s: dropIn s != { }) sectors));

          environment.etc = lib.listToAttrs (map (s: {
            name = "paramant/${kind}/${s}.toml";
            value = { text = unitData.files."etc/paramant/${kind}/${s}.toml".text; mode = "0644"; };
          }) sectors);

          networking.firewall.allowedTCPPorts = map (s: cfg.${s}.port) (lib.filter (s: cfg.${s}.openFirewall) sectors);

          system.checks = map (s: checkConfig {
            name = "${kind}-${s}";
            exe = "${if cfg.${s}.package != null then cfg.${s}.package else defaultPackage}/bin/paramant-${kind}";
            settings = rendered s;
          }) sectors;
        };
      };
    }
    (lib.mkIf (sectors != [ ] || cfg.extraTargetWants != [ ]) {
      assertions = portAssertions;
      systemd.services."paramant-secrets" = {
        unitConfig = unitData.units."paramant-secrets.service".Unit;
        serviceConfig = unitData.units."paramant-secrets.service".Service;
      };
      systemd.targets.paramant = {
        unitConfig = unitData.units."paramant.target".Unit // {
          # Only the instances this machine enables (units.nix lists every sector's pair).
          Wants = lib.concatMap (s:
            lib.optional (lib.elem s ctlogSectors) "paramant-ctlog@${s}.service"
            ++ lib.optional (lib.elem s relaySectors) "paramant-relay@${s}.service") sectors
            # admin and license in units.nix's order, whatever the order modules are imported in.
            ++ lib.filter (u: lib.elem u cfg.extraTargetWants) unitData.instances
            ++ lib.filter (u: !(lib.elem u unitData.instances)) cfg.extraTargetWants;
        };
        wantedBy = unitData.units."paramant.target".Install.WantedBy;
      };
    })
  ];
}

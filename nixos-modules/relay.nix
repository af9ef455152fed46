# services.paramant.relays.<sector>: the data plane of one sector, run by the template unit
# paramant-relay@.service from ./lib/units.nix (instance = sector). Needs the same sector's log.
{ config, lib, paramant, ... }:
let
  inherit (lib) mkOption types;
  top = config.services.paramant;
  cfg = top.relays;
  enabled = lib.filter (s: cfg.${s}.enable) (lib.attrNames cfg);
  # Unknown sector names only get their assertion; units.nix has no data for them.
  sectors = lib.filter (s: lib.elem s paramant.knownSectors) enabled;

  instance = { name, config, ... }:
    let
      ports = paramant.defaultPorts.${name} or { relay = 8000; relayInternal = 8300; };
      unit = "paramant-relay@${name}.service";
      log = top.ctlog.${name} or null;
    in
    {
      options = {
        enable = lib.mkEnableOption "this sector's relay" // { default = true; };
        package = mkOption {
          type = types.nullOr types.package;
          default = null;
          description = "Run this relay from another package than `services.paramant.package` (a per-instance drop-in).";
        };
        listenAddress = mkOption {
          type = types.str;
          default = "0.0.0.0";
          description = "Address of the public data-plane listener.";
        };
        port = mkOption {
          type = types.port;
          default = ports.relay;
          defaultText = "8000 + the sector's index";
          description = "Public data-plane port (HTTP, or HTTPS with `tls`).";
        };
        internalPort = mkOption {
          type = types.port;
          default = ports.relayInternal;
          defaultText = "8300 + the sector's index";
          description = "Internal API port (admin panel → relay, X-Internal-Auth), always on 127.0.0.1.";
        };
        publicUrl = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "https://health.paramant.example.org";
          description = "Public base URL (download links, relay registry). Default: derived from the listener.";
        };
        openFirewall = mkOption {
          type = types.bool;
          default = false;
          description = "Open `port` in the firewall.";
        };
        tls = {
          certificateFile = mkOption {
            type = types.nullOr types.path;
            default = null;
            example = "/var/lib/acme/health.paramant.example.org/fullchain.pem";
            description = "PEM certificate chain for the public listener (handed over with `LoadCredential=`).";
          };
          keyFile = paramant.secretOption "the PEM private key of `tls.certificateFile`" "/var/lib/acme/health.paramant.example.org/key.pem";
        };
        releasePublicKeys = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "The release public keys file (`paramant release keygen`) served at `/.well-known/paramant-release.pub`.";
        };
        settings = mkOption {
          type = paramant.settingsType;
          default = { };
          example = { limits.blob_budget_bytes = 2147483648; webhook.ports = [ 443 ]; };
          description = "Free-form `paramant-relay` settings (TOML, see crates/relay/src/config.rs), merged over the module's.";
        };
        finalSettings = mkOption {
          type = types.attrs;
          readOnly = true;
          internal = true;
          description = "What the module passes to units.nix for this sector (merged over its defaults).";
        };
      };
      config.finalSettings = lib.recursiveUpdate ({
        public_listen = "${config.listenAddress}:${toString config.port}";
        internal_listen = "127.0.0.1:${toString config.internalPort}";
        public_url = config.publicUrl;
        release_public_keys_file = if config.releasePublicKeys == null then null else "${config.releasePublicKeys}";
        tls = if config.tls.keyFile == null then null else {
          cert_file = paramant.credentialPath unit "tls-cert";
          key_file = paramant.credentialPath unit "tls-key";
        };
      } // lib.optionalAttrs (log != null) {
        ctlog = {
          internal_url = "http://127.0.0.1:${toString log.internalPort}";
          public_url = "http://127.0.0.1:${toString log.port}";
        };
      }) config.settings;
    };

  rendered = s: paramant.unitData.settings.relay.${s};

  assertionsFor = s:
    let i = cfg.${s}; opt = "services.paramant.relays.${s}"; in
    [
      {
        assertion = lib.elem s paramant.knownSectors;
        message = "${opt}: \"${s}\" is not a sector; use one of ${lib.concatStringsSep ", " paramant.knownSectors}.";
      }
      {
        assertion = (top.ctlog.${s}.enable or false);
        message = "${opt} needs the ${s} sector's log: every upload is appended to it. Add services.paramant.ctlog.${s} = { }; next to the relay.";
      }
      {
        assertion = (i.tls.certificateFile == null) == (i.tls.keyFile == null);
        message = "${opt}.tls needs both certificateFile and keyFile (or neither, for plain HTTP behind a proxy).";
      }
      {
        assertion = !(lib.elem s paramant.knownSectors) || (rendered s).state_dir == "/var/lib/paramant-relay-${s}";
        message = "${opt}.settings.state_dir must stay /var/lib/paramant-relay-${s}: the unit's StateDirectory (DynamicUser) is the only place the relay may write.";
      }
    ] ++ paramant.secretAssertions "${opt}.tls.keyFile" i.tls.keyFile;

  template = paramant.unitData.units."paramant-relay@.service";

  dropIn = s:
    let i = cfg.${s}; in
    lib.optionalAttrs (i.package != null) {
      ExecStart = [ "" "${i.package}/bin/paramant-relay run --config /etc/paramant/relay/${s}.toml" ];
    } // lib.optionalAttrs (i.tls.keyFile != null) {
      LoadCredential = [ "tls-cert:${toString i.tls.certificateFile}" "tls-key:${toString i.tls.keyFile}" ];
    };
in
{
  options.services.paramant.relays = mkOption {
    type = types.attrsOf (types.submodule instance);
    default = { };
    example = { health = { openFirewall = true; }; };
    description = "Relays, one per sector (relay, health, legal, finance, iot); each needs its sector's log.";
  };

  # The names of the attributes set here stay literal: the module system reads them before
  # `paramant` (a module argument) can be evaluated.
  config = lib.mkIf (enabled != [ ]) (
    let
      units = paramant.sectorUnits {
        kind = "relay";
        inherit cfg sectors template dropIn rendered;
        defaultPackage = top.package;
      };
    in
    {
      assertions = lib.concatMap assertionsFor enabled;
      inherit (units) systemd environment networking system;
    });
}

# services.paramant.ctlog.<sector>: one transparency log per sector, run by the template unit
# paramant-ctlog@.service from ./lib/units.nix (instance = sector).
{ config, lib, paramant, ... }:
let
  inherit (lib) mkOption types;
  top = config.services.paramant;
  cfg = top.ctlog;
  enabled = lib.filter (s: cfg.${s}.enable) (lib.attrNames cfg);
  # Unknown sector names only get their assertion; units.nix has no data for them.
  sectors = lib.filter (s: lib.elem s paramant.knownSectors) enabled;

  instance = { name, config, ... }:
    let
      ports = paramant.defaultPorts.${name} or { ctlogPublic = 8100; ctlogInternal = 8200; };
    in
    {
      options = {
        enable = lib.mkEnableOption "this sector's transparency log" // { default = true; };
        package = mkOption {
          type = types.nullOr types.package;
          default = null;
          description = "Run this log from another package than `services.paramant.package` (a per-instance drop-in).";
        };
        listenAddress = mkOption {
          type = types.str;
          default = "127.0.0.1";
          description = "Address of the public read API (the sector's relay serves CT reads on its own origin).";
        };
        port = mkOption {
          type = types.port;
          default = ports.ctlogPublic;
          defaultText = "8100 + the sector's index";
          description = "Public read API port (STHs, proofs, gossip ingest, feeds).";
        };
        internalPort = mkOption {
          type = types.port;
          default = ports.ctlogInternal;
          defaultText = "8200 + the sector's index";
          description = "Internal API port (relays only, X-Internal-Auth), always on 127.0.0.1.";
        };
        relayId = mkOption {
          type = types.str;
          default = "${name}.${top.domain}";
          defaultText = "\"<sector>.\${services.paramant.domain}\"";
          description = "The log's identity in every tree head it signs.";
        };
        openFirewall = mkOption {
          type = types.bool;
          default = false;
          description = "Open `port` in the firewall (only useful with a non-loopback `listenAddress`).";
        };
        signingKeyFile = paramant.secretOption "the log's ML-DSA-65 seed (32 bytes); absent: the log generates one in its state directory on first start" "/run/agenix/paramant-ctlog-health.key";
        settings = mkOption {
          type = paramant.settingsType;
          default = { };
          example = { sth_refresh_secs = 60; gossip.peer = [{ relay_id = "health.other.example"; public_key = "…"; url = "https://other.example"; }]; };
          description = "Free-form `paramant-ctlog` settings (TOML, see crates/ctlog/src/config.rs), merged over the module's.";
        };
        finalSettings = mkOption {
          type = types.attrs;
          readOnly = true;
          internal = true;
          description = "What the module passes to units.nix for this sector (merged over its defaults).";
        };
      };
      config.finalSettings = lib.recursiveUpdate {
        relay_id = config.relayId;
        public_listen = "${config.listenAddress}:${toString config.port}";
        internal_listen = "127.0.0.1:${toString config.internalPort}";
      } config.settings;
    };

  rendered = s: paramant.unitData.settings.ctlog.${s};

  assertionsFor = s:
    let i = cfg.${s}; opt = "services.paramant.ctlog.${s}"; in
    [
      {
        assertion = lib.elem s paramant.knownSectors;
        message = "${opt}: \"${s}\" is not a sector; use one of ${lib.concatStringsSep ", " paramant.knownSectors}.";
      }
      {
        assertion = !(i.openFirewall && lib.hasPrefix "127." i.listenAddress);
        message = "${opt}.openFirewall opens port ${toString i.port}, but the log listens on ${i.listenAddress}; set ${opt}.listenAddress = \"0.0.0.0\" or leave openFirewall off.";
      }
      {
        assertion = !(lib.elem s paramant.knownSectors) || (rendered s).state_dir == "/var/lib/paramant-ctlog-${s}";
        message = "${opt}.settings.state_dir must stay /var/lib/paramant-ctlog-${s}: the unit's StateDirectory (DynamicUser) is the only place the log may write.";
      }
    ] ++ paramant.secretAssertions "${opt}.signingKeyFile" i.signingKeyFile;

  credentialKind = if top.logKeyCredential == "encrypted" then "LoadCredentialEncrypted" else "LoadCredential";
  template = paramant.unitData.units."paramant-ctlog@.service";

  # Per-instance drop-ins: another package, or a signing key from a path.
  dropIn = s:
    let i = cfg.${s}; in
    lib.optionalAttrs (i.package != null) {
      ExecStart = [ "" "${i.package}/bin/paramant-ctlog run --config /etc/paramant/ctlog/${s}.toml" ];
    } // lib.optionalAttrs (i.signingKeyFile != null) {
      ${credentialKind} = paramant.overrideCredentials template.Service.${credentialKind}
        { log-key = toString i.signingKeyFile; };
    };
in
{
  options.services.paramant.ctlog = mkOption {
    type = types.attrsOf (types.submodule instance);
    default = { };
    example = { health = { }; legal.settings.sth_refresh_secs = 30; };
    description = "Transparency logs, one per sector (relay, health, legal, finance, iot).";
  };

  # The names of the attributes set here stay literal: the module system reads them before
  # `paramant` (a module argument) can be evaluated.
  config = lib.mkIf (enabled != [ ]) (
    let
      units = paramant.sectorUnits {
        kind = "ctlog";
        inherit cfg sectors template dropIn rendered;
        defaultPackage = top.package;
      };
    in
    {
      assertions = lib.concatMap assertionsFor enabled;
      inherit (units) systemd environment networking system;
    });
}

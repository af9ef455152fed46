# services.paramant.admin: accounts with TOTP, the admin API and the web panel
# (crates/admin), as paramant-admin.service. The unit and /etc/paramant/admin.toml come from
# ./lib/units.nix (services ∋ "admin"), the data scripts/render-units.sh renders for the Debian
# harness too; this module only chooses its arguments (common.nix passes them) and checks them.
# The panel manages every enabled sector's relay and records admin actions in the first
# sector's log.
{ config, lib, paramant, ... }:
let
  inherit (lib) mkOption types;
  top = config.services.paramant;
  cfg = top.admin;
  pkg = if cfg.package != null then cfg.package else top.package;
  enabledSectors = attrs: lib.filter (s: attrs.${s}.enable && lib.elem s paramant.knownSectors) (lib.attrNames attrs);
  relaySectors = enabledSectors (top.relays or { });
  # units.nix lists every sector that has a log or a relay as one the panel drives.
  logOnlySectors = lib.filter (s: !(lib.elem s relaySectors)) (enabledSectors (top.ctlog or { }));

  unit = paramant.unitData.units."paramant-admin.service";
  settings = paramant.unitData.settings.admin;
in
{
  options.services.paramant.admin = {
    enable = lib.mkEnableOption "the paramant accounts service and admin panel";
    package = mkOption {
      type = types.nullOr types.package;
      default = null;
      description = "Package with `paramant-admin`; default `services.paramant.package`.";
    };
    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Address of the public listener (accounts API, admin API, web panel); keep it on loopback behind a TLS-terminating proxy.";
    };
    port = mkOption {
      type = types.port;
      default = 8400;
      description = "Port of the public listener.";
    };
    internalPort = mkOption {
      type = types.port;
      default = 8401;
      description = "Port of the internal listener (the relays' `/v2/user/*` TOTP calls, X-Internal-Auth), always on 127.0.0.1.";
    };
    publicUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://accounts.paramant.example.org";
      description = "Base URL users reach the panel at (setup links in mails; the relays' `user_accounts_url`). Default: `http://<listenAddress>:<port>`.";
    };
    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `port` in the firewall (not recommended: put a TLS proxy in front instead).";
    };
    settings = mkOption {
      type = paramant.settingsType;
      default = { };
      example = { mail.smtp = "127.0.0.1:25"; sessions.idle_secs = 900; };
      description = "Free-form `paramant-admin` settings (TOML, see crates/admin/src/config.rs; unknown keys are refused), merged over the module's.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = relaySectors != [ ];
        message = "services.paramant.admin drives relays over their internal API; enable at least one, e.g. services.paramant.relays.health = { }; (and its log).";
      }
      {
        assertion = logOnlySectors == [ ];
        message = "services.paramant.admin manages every sector's relay, but ${lib.concatStringsSep ", " logOnlySectors} has a log and no relay; add services.paramant.relays.${lib.head (logOnlySectors ++ [ "" ])} = { }; or disable that log.";
      }
      {
        assertion = !(cfg.openFirewall && lib.hasPrefix "127." cfg.listenAddress);
        message = "services.paramant.admin.openFirewall opens port ${toString cfg.port}, but the panel listens on ${cfg.listenAddress}; set services.paramant.admin.listenAddress or leave openFirewall off.";
      }
      {
        assertion = settings.state_dir == "/var/lib/paramant-admin";
        message = "services.paramant.admin.settings.state_dir must stay /var/lib/paramant-admin: the unit's StateDirectory (DynamicUser) is the only place the panel may write.";
      }
      {
        assertion = lib.hasPrefix "127." (toString settings.internal_listen);
        message = "services.paramant.admin.settings.internal_listen = \"${toString settings.internal_listen}\": the internal API must listen on loopback only.";
      }
    ];
    services.paramant.extraTargetWants = [ "paramant-admin.service" ];
    services.paramant.extraPortClaims = [
      { option = "services.paramant.admin.port"; inherit (cfg) port; }
      { option = "services.paramant.admin.internalPort"; port = cfg.internalPort; }
    ];
    systemd.services.paramant-admin = {
      unitConfig = unit.Unit;
      serviceConfig = unit.Service;
    };
    environment.etc."paramant/admin.toml" = {
      inherit (paramant.unitData.files."etc/paramant/admin.toml") text;
      mode = "0644";
    };
    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.port;
    system.checks = [ (paramant.checkConfig { name = "admin"; exe = "${pkg}/bin/paramant-admin"; inherit settings; }) ];
  };
}

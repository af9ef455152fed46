# services.paramant.admin: the admin panel (accounts, TOTP, admin API, web UI) as
# paramant-admin.service.
#
# PROVISIONAL — the admin service is being built on the `admin` branch, which adds
# `paramant-admin.service` to ./lib/units.nix. Until that lands this module defines the unit
# itself from ./lib/hardening.nix; once units.nix has it, the `or` below picks units.nix's unit
# (one source of truth) and the lead aligns the config keys (`state_dir`, `listen`,
# `[[relay]]`) with crates/admin's Config at merge.
{ config, lib, paramant, ... }:
let
  inherit (lib) mkOption types;
  top = config.services.paramant;
  cfg = top.admin;
  pkg = if cfg.package != null then cfg.package else top.package;
  configPath = "/etc/paramant/admin.toml";
  relaySectors = lib.filter (s: top.relays.${s}.enable) (lib.attrNames top.relays);

  provisionalUnit = {
    Unit = {
      Description = "paramant admin panel";
      After = [ "network.target" "paramant-secrets.service" ];
      Wants = [ "paramant-secrets.service" ];
      PartOf = [ "paramant.target" ];
      AssertPathExists = configPath;
    };
    Service = import ./lib/hardening.nix // {
      Type = "notify";
      ExecStart = "${pkg}/bin/paramant admin run --config ${configPath}";
      User = "paramant-admin";
      StateDirectory = "paramant-admin";
      StateDirectoryMode = "0700";
      Restart = "on-failure";
      WatchdogSec = "${toString top.watchdogSec}s";
      IPAddressDeny = "any";
      IPAddressAllow = [ "localhost" ];
      # The relays' internal tokens (made by paramant-secrets), one per sector.
      LoadCredential = map (s: "relay-${s}-internal-token:paramant-${s}.relay-internal-token") relaySectors;
    };
    Install = { };
  };
  unit = paramant.unitData.units."paramant-admin.service" or provisionalUnit;

  settings = lib.recursiveUpdate {
    state_dir = "/var/lib/paramant-admin";
    listen = "${cfg.listenAddress}:${toString cfg.port}";
    relay = map (s: {
      sector = s;
      internal_url = "http://127.0.0.1:${toString top.relays.${s}.internalPort}";
      token_file = paramant.credentialPath "paramant-admin.service" "relay-${s}-internal-token";
    }) relaySectors;
    sandbox.landlock = top.landlock;
  } cfg.settings;
in
{
  options.services.paramant.admin = {
    enable = lib.mkEnableOption "the paramant admin panel";
    package = mkOption {
      type = types.nullOr types.package;
      default = null;
      description = "Package with `paramant admin`; default `services.paramant.package`.";
    };
    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Admin panel listener address (loopback: reach it through an SSH tunnel or a proxy).";
    };
    port = mkOption {
      type = types.port;
      default = 4200;
      description = "Admin panel port.";
    };
    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `port` in the firewall (not recommended; the panel holds TOTP secrets).";
    };
    settings = mkOption {
      type = paramant.settingsType;
      default = { };
      description = "Free-form `paramant admin` settings (TOML), merged over the module's.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = relaySectors != [ ];
        message = "services.paramant.admin drives relays over their internal API; enable at least one, e.g. services.paramant.relays.health = { }; (and its log).";
      }
      {
        assertion = !(cfg.openFirewall && lib.hasPrefix "127." cfg.listenAddress);
        message = "services.paramant.admin.openFirewall opens port ${toString cfg.port}, but the panel listens on ${cfg.listenAddress}; set services.paramant.admin.listenAddress or leave openFirewall off.";
      }
    ];
    services.paramant.extraTargetWants = [ "paramant-admin.service" ];
    services.paramant.extraPortClaims = [{ option = "services.paramant.admin.port"; inherit (cfg) port; }];
    systemd.services.paramant-admin = {
      unitConfig = unit.Unit;
      serviceConfig = unit.Service;
    };
    environment.etc."paramant/admin.toml" = { text = paramant.toTOML settings; mode = "0644"; };
    networking.firewall.allowedTCPPorts = lib.optional cfg.openFirewall cfg.port;
    system.checks = [ (paramant.checkConfig { name = "admin"; exe = "${pkg}/bin/paramant admin"; inherit settings; }) ];
  };
}

# services.paramant.license: the license client (offline token, online check-in at start and
# every 6 hours, telemetry preview, remote actions) as paramant-license.service + .timer.
#
# PROVISIONAL — the license service is being built on the `license` branch, which adds
# `paramant-license.service`/`.timer` to ./lib/units.nix. Until that lands this module defines
# them itself from ./lib/hardening.nix; once units.nix has them, the `or` below picks units.nix's
# (one source of truth) and the lead aligns the config keys (`state_dir`, `license_file`,
# `server_url`) with crates/license's Config at merge.
{ config, lib, paramant, ... }:
let
  inherit (lib) mkOption types;
  top = config.services.paramant;
  cfg = top.license;
  pkg = if cfg.package != null then cfg.package else top.package;
  configPath = "/etc/paramant/license.toml";

  provisionalService = {
    Unit = {
      Description = "paramant license check-in";
      After = [ "network-online.target" ];
      Wants = [ "network-online.target" ];
      AssertPathExists = configPath;
    };
    Service = import ./lib/hardening.nix // {
      Type = "oneshot";
      ExecStart = "${pkg}/bin/paramant license run --config ${configPath}";
      User = "paramant-license";
      StateDirectory = "paramant-license";
      StateDirectoryMode = "0755";
      LoadCredential = lib.optional (cfg.licenseFile != null) "license:${toString cfg.licenseFile}";
    };
    Install = { };
  };
  provisionalTimer = {
    Unit.Description = "paramant license check-in at start and every 6 hours";
    Timer = { OnActiveSec = "0"; OnUnitActiveSec = "6h"; RandomizedDelaySec = "10min"; };
    Install.WantedBy = [ "timers.target" ];
  };
  service = paramant.unitData.units."paramant-license.service" or provisionalService;
  timer = paramant.unitData.units."paramant-license.timer" or provisionalTimer;

  settings = lib.recursiveUpdate {
    state_dir = "/var/lib/paramant-license";
    server_url = cfg.serverUrl;
    license_file = if cfg.licenseFile == null then null
      else paramant.credentialPath "paramant-license.service" "license";
    sandbox.landlock = top.landlock;
  } cfg.settings;
in
{
  options.services.paramant.license = {
    enable = lib.mkEnableOption "the paramant license client (without it: Community plan)";
    package = mkOption {
      type = types.nullOr types.package;
      default = null;
      description = "Package with `paramant license`; default `services.paramant.package`.";
    };
    licenseFile = paramant.secretOption "the `plk_` license token" "/run/agenix/paramant-license";
    serverUrl = mkOption {
      type = types.str;
      default = "https://license.paramant.app";
      description = "License server for the online check-in.";
    };
    settings = mkOption {
      type = paramant.settingsType;
      default = { };
      description = "Free-form `paramant license` settings (TOML), merged over the module's.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = paramant.secretAssertions "services.paramant.license.licenseFile" cfg.licenseFile ++ [{
      assertion = lib.hasPrefix "https://" cfg.serverUrl;
      message = "services.paramant.license.serverUrl = \"${cfg.serverUrl}\" must be an https:// URL: the check-in carries the license token.";
    }];
    services.paramant.extraTargetWants = [ "paramant-license.timer" ];
    systemd.services.paramant-license = {
      unitConfig = service.Unit;
      serviceConfig = service.Service;
    };
    systemd.timers.paramant-license = {
      unitConfig = timer.Unit;
      timerConfig = timer.Timer;
      wantedBy = timer.Install.WantedBy;
    };
    environment.etc."paramant/license.toml" = { text = paramant.toTOML settings; mode = "0644"; };
    system.checks = [ (paramant.checkConfig { name = "license"; exe = "${pkg}/bin/paramant license"; inherit settings; }) ];
  };
}

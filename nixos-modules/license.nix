# services.paramant.license: the license client (crates/license-service: offline token, online
# check-in, signed capability set, telemetry, remote actions) as paramant-license.service and a
# 6-hourly paramant-license.timer. The units and /etc/paramant/license.toml come from
# ./lib/units.nix (services ∋ "license"), the data scripts/render-units.sh renders for the
# Debian harness too; this module only chooses its arguments (common.nix passes them) and checks
# them. With it every relay reads the offline token and the state the check-in publishes.
{ config, lib, paramant, ... }:
let
  inherit (lib) mkOption types;
  top = config.services.paramant;
  cfg = top.license;
  pkg = if cfg.package != null then cfg.package else top.package;
  sector = paramant.licenseSector;

  service = paramant.unitData.units."paramant-license.service";
  timer = paramant.unitData.units."paramant-license.timer";
  settings = paramant.unitData.settings.license;
in
{
  options.services.paramant.license = {
    enable = lib.mkEnableOption "the paramant license client (without it: Community Edition)";
    package = mkOption {
      type = types.nullOr types.package;
      default = null;
      description = "Package with `paramant-license`; default `services.paramant.package`.";
    };
    licenseFile = paramant.secretOption "the offline `plk_` license token (for paramant-license and every relay)" "/run/agenix/paramant-license";
    serverUrl = mkOption {
      type = types.str;
      default = "https://license.paramant.app/v1/license/check";
      description = "The license server's check-in endpoint (https only: the check-in carries the token).";
    };
    sector = mkOption {
      type = types.nullOr (types.enum paramant.knownSectors);
      default = null;
      description = "The sector whose log records every check-in and remote action (its key is the relay's identity). Default: the first enabled sector.";
    };
    telemetry = mkOption {
      type = types.bool;
      default = false;
      description = "Opt in to telemetry: aggregate numbers only (`paramant license telemetry-preview` shows them).";
    };
    settings = mkOption {
      type = paramant.settingsType;
      default = { };
      example = { timeout_secs = 60; ca_file = "/etc/paramant/license-ca.pem"; };
      description = "Free-form `paramant-license` settings (TOML, see crates/license-service/src/config.rs; unknown keys are refused), merged over the module's.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = paramant.secretAssertions "services.paramant.license.licenseFile" cfg.licenseFile ++ [
      {
        assertion = lib.hasPrefix "https://" settings.server_url;
        message = "services.paramant.license.serverUrl = \"${settings.server_url}\" must be an https:// URL: the check-in carries the license token.";
      }
      {
        assertion = top.ctlog.${sector}.enable or false;
        message = "services.paramant.license records every check-in in the ${sector} sector's log; add services.paramant.ctlog.${sector} = { }; (and its relay), or set services.paramant.license.sector.";
      }
      {
        assertion = settings.state_dir == "/var/lib/paramant-license";
        message = "services.paramant.license.settings.state_dir must stay /var/lib/paramant-license: the unit's StateDirectory (DynamicUser) is the only place the client may write.";
      }
    ];
    services.paramant.extraTargetWants = [ "paramant-license.service" "paramant-license.timer" ];
    # The published state (0640, the operator's token inside) is this static group's to read:
    # paramant-license runs with Group= it, each relay and the admin with SupplementaryGroups=.
    users.groups.paramant-license = { };
    systemd.services.paramant-license = {
      unitConfig = service.Unit;
      serviceConfig = service.Service;
    };
    systemd.timers.paramant-license = {
      unitConfig = timer.Unit;
      timerConfig = timer.Timer;
      wantedBy = timer.Install.WantedBy or [ ];
    };
    environment.etc."paramant/license.toml" = {
      inherit (paramant.unitData.files."etc/paramant/license.toml") text;
      mode = "0644";
    };
    system.checks = [ (paramant.checkConfig { name = "license"; exe = "${pkg}/bin/paramant-license"; inherit settings; }) ];
  };
}

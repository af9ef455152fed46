# TEST ONLY: evaluates the paramant NixOS modules with nixpkgs' real lib.evalModules, the NixOS
# option declarations in ./nixos-options-for-tests.nix and a fake `pkgs` (no nixpkgs here), and
# reports each case. scripts/nix-check.sh runs it:
#   nix-instantiate --eval --strict --json nixos-modules/tests/eval.nix --arg lib 'import …/lib'
# Result: { results = [ { name; ok; detail; } ]; harness = { units; files; }; } — `harness` is
# what the modules produce for the Debian systemd harness's configuration (every sector, log and
# relay, binaries in /usr/local/bin), rendered as NixOS renders units, for the script to compare
# with scripts/render-units.sh's output.
{ lib }:
let
  fakeDrv = name: outPath: { type = "derivation"; inherit name outPath; drvPath = "${outPath}.drv"; };
  # TEST ONLY: what the modules take from pkgs, with the paths the Debian harness uses.
  fakePkgs = {
    paramant = fakeDrv "paramant" "/usr/local";
    writeShellScript = name: _text: "/usr/local/lib/paramant/${name}";
    writeText = name: text: fakeDrv name "/nix/store/eval-test-${name}" // { inherit text; };
    runCommand = name: _env: script: fakeDrv name "/nix/store/eval-test-${name}" // { inherit script; };
  };

  serviceModules = [
    ./nixos-options-for-tests.nix
    ../common.nix
    ../ctlog.nix
    ../relay.nix
    ../admin.nix
    ../license.nix
    { _module.args.pkgs = fakePkgs; }
  ];
  eval = modules: (lib.evalModules { modules = serviceModules ++ modules; }).config;
  evalOS = modules: eval ([ ../paramantOS.nix ] ++ modules);

  allSectors = [ "relay" "health" "legal" "finance" "iot" ];
  everySector = {
    services.paramant.ctlog = lib.genAttrs allSectors (_: { });
    services.paramant.relays = lib.genAttrs allSectors (_: { });
  };

  # TEST ONLY: the options of agenix and sops-nix that the examples in secrets/ use, with the
  # paths those tools decrypt to.
  secretToolOptions = { lib, ... }:
    let
      secretsOf = dir: extra: lib.mkOption {
        type = lib.types.attrsOf (lib.types.submodule ({ name, ... }: {
          options = extra // {
            path = lib.mkOption { type = lib.types.str; default = "${dir}/${name}"; };
          };
        }));
        default = { };
      };
      opt = type: lib.mkOption { inherit type; default = null; };
    in
    {
      options.age.secrets = secretsOf "/run/agenix" { file = opt (lib.types.nullOr lib.types.path); };
      options.sops.secrets = secretsOf "/run/secrets" {
        sopsFile = opt (lib.types.nullOr lib.types.path);
        key = opt (lib.types.nullOr lib.types.str);
        format = opt (lib.types.nullOr lib.types.str);
      };
    };

  failing = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # Units as NixOS writes them: unitConfig plus the list options, serviceConfig; wantedBy is
  # what [Install] WantedBy= means (NixOS makes the .wants symlinks itself).
  unitFileName = kind: name: if lib.hasSuffix "@" name then "${name}.${kind}" else "${name}.${kind}";
  renderUnit = kind: u: {
    Unit = u.unitConfig
      // lib.optionalAttrs (u.description != "") { Description = u.description; }
      // lib.filterAttrs (_: v: v != [ ]) {
        After = (u.unitConfig.After or [ ]) ++ u.after;
        Wants = (u.unitConfig.Wants or [ ]) ++ u.wants;
        Before = (u.unitConfig.Before or [ ]) ++ u.before;
        PartOf = (u.unitConfig.PartOf or [ ]) ++ u.partOf;
      };
    Install = lib.optionalAttrs (u.wantedBy != [ ]) { WantedBy = u.wantedBy; };
  } // lib.optionalAttrs (kind == "service") { Service = u.serviceConfig; }
    // lib.optionalAttrs (kind == "timer") { Timer = u.timerConfig; };
  renderUnits = kind: units: lib.mapAttrs' (n: u: lib.nameValuePair (unitFileName kind n) (renderUnit kind u))
    (lib.filterAttrs (_: u: u.overrideStrategy != "asDropin") units);
  unitsOf = config: renderUnits "service" config.systemd.services // renderUnits "target" config.systemd.targets
    // renderUnits "timer" config.systemd.timers;
  filesOf = config: lib.mapAttrs' (n: f: lib.nameValuePair "etc/${n}" { inherit (f) text mode; }) config.environment.etc;

  harnessConfig = eval [ everySector ];
  # The same with the accounts service and the license client (render-units.sh --services
  # ctlog,relay,admin,license).
  harnessFullConfig = eval [ everySector { services.paramant = { admin.enable = true; license.enable = true; }; } ];

  # --- the cases ---------------------------------------------------------------------------
  # check name value: ok when `value` evaluates (deeply) to true.
  check = name: value:
    let r = builtins.tryEval (builtins.deepSeq value value); in
    { inherit name; ok = r.success && r.value == true; detail = if r.success then "" else "evaluation failed"; };
  # A configuration the module system must refuse with a type error.
  rejects = name: modules:
    let
      c = eval modules;
      r = builtins.tryEval (builtins.deepSeq [ (unitsOf c) (filesOf c) c.networking.firewall.allowedTCPPorts ] true);
    in
    { inherit name; ok = !r.success; detail = if r.success then "accepted a bad value" else ""; };
  # A configuration whose assertions must fail with a message containing `expected`.
  fires = name: expected: modules:
    let
      r = builtins.tryEval (builtins.deepSeq (failing (eval modules)) (failing (eval modules)));
      hit = r.success && lib.any (m: lib.hasInfix expected m) r.value;
    in
    { inherit name; ok = hit; detail = if !r.success then "evaluation failed" else if hit then "" else "messages: ${builtins.toJSON r.value}"; };
  firesOS = name: expected: modules: fires name expected ([ ../paramantOS.nix ] ++ modules);

  relayToml = config: s: config.environment.etc."paramant/relay/${s}.toml".text;
  ctlogToml = config: s: config.environment.etc."paramant/ctlog/${s}.toml".text;
  one = sector: extra: lib.recursiveUpdate {
    services.paramant.ctlog.${sector} = { };
    services.paramant.relays.${sector} = { };
  } extra;

  results = [
    (check "harness configuration: no assertion fails" (failing harnessConfig == [ ]))
    (check "harness configuration: paramant.target wants every sector's log and relay"
      (harnessConfig.systemd.targets.paramant.unitConfig.Wants
        == lib.concatMap (s: [ "paramant-ctlog@${s}.service" "paramant-relay@${s}.service" ]) allSectors))
    (check "default ports: relay 8000+n public, 8300+n internal; log 8100+n, 8200+n"
      (let c = eval [ everySector ]; in
        c.services.paramant.relays.health.port == 8001 && c.services.paramant.relays.iot.internalPort == 8304
        && c.services.paramant.ctlog.legal.port == 8102 && c.services.paramant.ctlog.finance.internalPort == 8203))
    (check "defaults: openFirewall off, landlock required, no drop-ins, nothing opened"
      (harnessConfig.networking.firewall.allowedTCPPorts == [ ]
        && lib.hasInfix "landlock = \"required\"" (relayToml harnessConfig "health")
        && !(harnessConfig.systemd.services ? "paramant-relay@health")))
    (check "typed ports reach the config and the firewall"
      (let c = eval [ (one "health" { services.paramant.relays.health = { port = 9443; openFirewall = true; }; }) ]; in
        lib.hasInfix "public_listen = \"0.0.0.0:9443\"" (relayToml c "health")
        && c.networking.firewall.allowedTCPPorts == [ 9443 ]))
    (check "a log's internal port is where its relay looks for it"
      (let c = eval [ (one "legal" { services.paramant.ctlog.legal.internalPort = 9202; }) ]; in
        lib.hasInfix "internal_listen = \"127.0.0.1:9202\"" (ctlogToml c "legal")
        && lib.hasInfix "internal_url = \"http://127.0.0.1:9202\"" (relayToml c "legal")))
    (check "free-form settings (RFC 42) are rendered to TOML, merged over the defaults"
      (let c = eval [ (one "health" {
          services.paramant.relays.health.settings = { limits.blob_budget_bytes = 1073741824; webhook.ports = [ 443 8443 ]; };
          services.paramant.ctlog.health.settings.gossip.peer = [{ relay_id = "health.peer.example"; public_key = "AAAA"; }];
        }) ]; t = relayToml c "health"; in
        lib.hasInfix "[limits]\nblob_budget_bytes = 1073741824\n" t && lib.hasInfix "ports = [443, 8443]" t
        && lib.hasInfix "sector = \"health\"" t
        && lib.hasInfix "[[gossip.peer]]\npublic_key = \"AAAA\"\nrelay_id = \"health.peer.example\"\n" (ctlogToml c "health")))
    (check "each log believes X-Real-IP only from its host's relay (gossip.trusted_proxies)"
      (lib.all (s: lib.hasInfix "[gossip]\ntrusted_proxies = [\"127.0.0.1\"]\n" (ctlogToml harnessConfig s)) allSectors))
    (check "only the enabled sectors get instances and configs"
      (let c = eval [ (one "health" { }) { services.paramant.ctlog.legal.enable = false; } ]; in
        c.systemd.targets.paramant.unitConfig.Wants == [ "paramant-ctlog@health.service" "paramant-relay@health.service" ]
        && lib.attrNames c.environment.etc == [ "paramant/ctlog/health.toml" "paramant/relay/health.toml" ]))
    (check "a log key path becomes a per-instance drop-in credential, not a store file"
      (let c = eval [ (one "health" { services.paramant.ctlog.health.signingKeyFile = "/run/agenix/log-key"; }) ];
           d = c.systemd.services."paramant-ctlog@health"; in
        d.overrideStrategy == "asDropin"
        && d.serviceConfig.LoadCredential == [ "" "log-key:/run/agenix/log-key" "internal-token:paramant-%i.ctlog-internal-token" ]
        && failing c == [ ]))
    (check "encrypted log keys: the drop-in resets LoadCredentialEncrypted"
      (let c = eval [ (one "health" { services.paramant = { logKeyCredential = "encrypted"; ctlog.health.signingKeyFile = "/etc/credstore.encrypted/k"; }; }) ]; in
        c.systemd.services."paramant-ctlog@health".serviceConfig.LoadCredentialEncrypted == [ "" "log-key:/etc/credstore.encrypted/k" ]
        && c.systemd.services."paramant-ctlog@".serviceConfig.LoadCredential == [ "internal-token:paramant-%i.ctlog-internal-token" ]))
    (check "TLS files reach the relay as credentials; the config names the credential paths"
      (let c = eval [ (one "health" { services.paramant.relays.health.tls = { certificateFile = "/var/lib/acme/h/fullchain.pem"; keyFile = "/var/lib/acme/h/key.pem"; }; }) ]; in
        c.systemd.services."paramant-relay@health".serviceConfig.LoadCredential
          == [ "tls-cert:/var/lib/acme/h/fullchain.pem" "tls-key:/var/lib/acme/h/key.pem" ]
        && lib.hasInfix "[tls]\ncert_file = \"/run/credentials/paramant-relay@health.service/tls-cert\"\nkey_file = \"/run/credentials/paramant-relay@health.service/tls-key\"\n" (relayToml c "health")))
    (check "another package for one instance: ExecStart reset in its drop-in"
      (let c = eval [ (one "health" { services.paramant.relays.health.package = fakeDrv "p2" "/opt/p2"; }) ]; in
        c.systemd.services."paramant-relay@health".serviceConfig.ExecStart
          == [ "" "/opt/p2/bin/paramant-relay run --config /etc/paramant/relay/health.toml" ]))
    (check "check-config runs on each rendered config at build time (system.checks)"
      (let cs = harnessConfig.system.checks; in
        lib.length cs == 10 && lib.all (c: lib.hasInfix "check-config --config /nix/store/eval-test-" c.script) cs
        && lib.any (c: lib.hasInfix "/usr/local/bin/paramant-relay check-config" c.script) cs))
    (check "the relay serves the configured release keys"
      (let c = eval [ (one "health" { services.paramant.relays.health.releasePublicKeys = "/etc/paramant/release.pub"; }) ]; in
        lib.hasInfix "release_public_keys_file = \"/etc/paramant/release.pub\"" (relayToml c "health")))
    (check "admin: units.nix's unit and config, listing every relay, wanted by the target; relays point users at it"
      (let c = eval [ (one "health" { services.paramant.admin.enable = true; }) ]; t = c.environment.etc."paramant/admin.toml".text; in
        c.systemd.services.paramant-admin.serviceConfig.ExecStart == "/usr/local/bin/paramant-admin run --config /etc/paramant/admin.toml"
        && lib.hasInfix "[[relays]]\ninternal_url = \"http://127.0.0.1:8301\"\nsector = \"health\"\ntoken_file = \"/run/credentials/paramant-admin.service/relay-health-token\"\n" t
        && lib.hasInfix "public_listen = \"127.0.0.1:8400\"" t && lib.hasInfix "internal_listen = \"127.0.0.1:8401\"" t
        && lib.hasInfix "[ctlog]\ninternal_url = \"http://127.0.0.1:8201\"" t
        && lib.elem "relay-health-token:paramant-health.relay-internal-token" c.systemd.services.paramant-admin.serviceConfig.LoadCredential
        && lib.hasInfix "user_accounts_url = \"http://127.0.0.1:8400\"" (relayToml c "health")
        && lib.elem "paramant-admin.service" c.systemd.targets.paramant.unitConfig.Wants && failing c == [ ]))
    (check "admin: ports, public URL and free-form settings reach its config"
      (let c = eval [ (one "health" { services.paramant.admin = { enable = true; port = 9400; internalPort = 9401;
             publicUrl = "https://accounts.example"; settings.mail.smtp = "127.0.0.1:25"; }; }) ];
           t = c.environment.etc."paramant/admin.toml".text; in
        lib.hasInfix "public_listen = \"127.0.0.1:9400\"" t && lib.hasInfix "internal_listen = \"127.0.0.1:9401\"" t
        && lib.hasInfix "public_url = \"https://accounts.example\"" t && lib.hasInfix "[mail]\nsmtp = \"127.0.0.1:25\"\n" t
        && lib.hasInfix "user_accounts_url = \"https://accounts.example\"" (relayToml c "health") && failing c == [ ]))
    (check "license: units.nix's service and 6-hourly timer; the token file reaches the client and every relay"
      (let c = eval [ (one "health" { services.paramant.license = { enable = true; licenseFile = "/run/agenix/license"; }; }) ];
           t = c.environment.etc."paramant/license.toml".text; in
        failing c == [ ]
        && lib.elem "license-token:/run/agenix/license" c.systemd.services.paramant-license.serviceConfig.LoadCredential
        && lib.elem "license-token:/run/agenix/license" c.systemd.services."paramant-relay@".serviceConfig.LoadCredential
        && c.systemd.timers.paramant-license.timerConfig.OnUnitActiveSec == "6h"
        && c.systemd.services.paramant-license.serviceConfig.ExecStart == "/usr/local/bin/paramant-license run --config /etc/paramant/license.toml"
        && lib.hasInfix "server_url = \"https://license.paramant.app/v1/license/check\"" t
        && lib.hasInfix "[ctlog]\ninternal_url = \"http://127.0.0.1:8201\"\npublic_url = \"http://127.0.0.1:8101\"\n" t
        && lib.hasInfix "[license]\nstate_file = \"/run/paramant-license/state.json\"" (relayToml c "health")
        && c.systemd.targets.paramant.unitConfig.Wants
          == [ "paramant-ctlog@health.service" "paramant-relay@health.service" "paramant-license.service" "paramant-license.timer" ]))
    (check "license: without a token file the credential store's (empty: Community Edition); telemetry and sector"
      (let c = eval [ (one "legal" { services.paramant.license = { enable = true; telemetry = true; sector = "legal"; }; }) ];
           t = c.environment.etc."paramant/license.toml".text; in
        failing c == [ ]
        && lib.elem "license-token:paramant.license-token" c.systemd.services.paramant-license.serviceConfig.LoadCredential
        && lib.hasInfix "telemetry = true" t && lib.hasInfix "internal_url = \"http://127.0.0.1:8202\"" t))
    (check "license: a static group reads the published state; the relays and the admin are in it, the admin gets the token and state too"
      (let c = eval [ (one "health" { services.paramant = { admin.enable = true; license = { enable = true; licenseFile = "/run/agenix/license"; }; }; }) ];
           lic = c.systemd.services.paramant-license.serviceConfig;
           relay = c.systemd.services."paramant-relay@";
           admin = c.systemd.services.paramant-admin; in
        failing c == [ ] && c.users.groups ? paramant-license
        && lic.Group == "paramant-license" && lic.User != "paramant-license" && lic.ReadWritePaths == [ "/run/paramant-license" ]
        && c.systemd.services.paramant-secrets.serviceConfig.RuntimeDirectoryMode == "0770"
        && relay.serviceConfig.SupplementaryGroups == [ "paramant-license" ]
        && admin.serviceConfig.SupplementaryGroups == [ "paramant-license" ]
        && lib.elem "license-token:/run/agenix/license" admin.serviceConfig.LoadCredential
        && lib.elem "paramant-license.service" admin.unitConfig.After && lib.elem "paramant-license.service" admin.unitConfig.Wants
        && lib.hasInfix "[license]\nstate_file = \"/run/paramant-license/state.json\"" c.environment.etc."paramant/admin.toml".text))
    (check "license off: no group, no SupplementaryGroups, no [license] in the admin's config"
      (let c = eval [ (one "health" { services.paramant.admin.enable = true; }) ]; in
        failing c == [ ] && !(c.users.groups ? paramant-license)
        && !(c.systemd.services."paramant-relay@".serviceConfig ? SupplementaryGroups)
        && !(c.systemd.services.paramant-admin.serviceConfig ? SupplementaryGroups)
        && !(lib.hasInfix "[license]" c.environment.etc."paramant/admin.toml".text)))
    (check "admin + license, every sector: the harness's units and configs (see harnessFull)"
      (failing harnessFullConfig == [ ] && lib.length harnessFullConfig.systemd.targets.paramant.unitConfig.Wants == 13))
    (check "paramantOS: every sector, only the relays' ports open, no SSH, no password, persistent journal"
      (let c = evalOS [ ]; in
        failing c == [ ] && lib.sort lib.lessThan c.networking.firewall.allowedTCPPorts == [ 8000 8001 8002 8003 8004 ]
        && !c.services.openssh.enable && c.users.users.root.hashedPassword == "!" && !c.users.mutableUsers
        && c.services.journald.storage == "persistent" && lib.length c.systemd.targets.paramant.unitConfig.Wants == 10))
    (check "secrets/agenix.nix: the log key and TLS key reach the units from /run/agenix"
      (let c = eval [ secretToolOptions ../../secrets/agenix.nix ]; in
        failing c == [ ]
        && c.systemd.services."paramant-ctlog@health".serviceConfig.LoadCredential
          == [ "" "log-key:/run/agenix/paramant-ctlog-health-key" "internal-token:paramant-%i.ctlog-internal-token" ]
        && lib.elem "tls-key:/run/agenix/paramant-relay-health-tls-key" c.systemd.services."paramant-relay@health".serviceConfig.LoadCredential))
    (check "secrets/sops-nix.nix: the license token and log key reach the units from /run/secrets"
      (let c = eval [ secretToolOptions ../../secrets/sops-nix.nix ]; in
        failing c == [ ]
        && lib.elem "license-token:/run/secrets/paramant-license" c.systemd.services.paramant-license.serviceConfig.LoadCredential
        && lib.elem "log-key:/run/secrets/paramant-ctlog-health-key" c.systemd.services."paramant-ctlog@health".serviceConfig.LoadCredential))
    (check "secrets/systemd-creds.nix: the log key is an encrypted credential"
      (let c = eval [ ../../secrets/systemd-creds.nix ]; in
        failing c == [ ]
        && c.systemd.services."paramant-ctlog@".serviceConfig.LoadCredentialEncrypted == [ "log-key:paramant-ctlog-%i.log-key" ]))
    (check "paramantOS units are the harness units" (unitsOf (evalOS [ ]) == unitsOf harnessConfig))

    (rejects "a port outside 0..65535 is a type error" [ (one "health" { services.paramant.relays.health.port = 70000; }) ])
    (rejects "a port given as a string is a type error" [ (one "health" { services.paramant.ctlog.health.port = "8101"; }) ])
    (rejects "landlock accepts only required / best-effort" [ { services.paramant.landlock = "off"; } (one "health" { }) ])
    (rejects "settings take no floats (TOML rendering would differ)" [ (one "health" { services.paramant.relays.health.settings.x = 1.5; }) ])
    (rejects "paramantOS sectors are the five known ones" [ ../paramantOS.nix { paramantOS.sectors = [ "mars" ]; } ])

    (fires "a relay without its sector's log" "needs the health sector's log"
      [ { services.paramant.relays.health = { }; } ])
    (fires "an unknown sector" "\"mars\" is not a sector" [ (one "mars" { }) ])
    (fires "a secret in the Nix store" "is in the Nix store, which every local user can read"
      [ (one "health" { services.paramant.ctlog.health.signingKeyFile = "${builtins.storeDir}/0000-log-key"; }) ])
    (fires "a secret given as a Nix path literal" "Nix copies such paths into the world-readable store"
      [ (one "health" { services.paramant.relays.health.tls = { certificateFile = "/c.pem"; keyFile = ./eval.nix; }; }) ])
    (fires "a license token in the Nix store" "services.paramant.license.licenseFile"
      [ { services.paramant.license = { enable = true; licenseFile = "${builtins.storeDir}/x-license"; }; } ])
    (fires "two listeners on one port" "give each listener its own port"
      [ (one "health" { services.paramant.relays.health.port = 8101; }) ])
    (fires "a privileged port" "needs CAP_NET_BIND_SERVICE"
      [ (one "health" { services.paramant.relays.health.port = 443; }) ])
    (fires "half a TLS configuration" "needs both certificateFile and keyFile"
      [ (one "health" { services.paramant.relays.health.tls.certificateFile = "/c.pem"; }) ])
    (fires "opening the firewall for a loopback log" "set services.paramant.ctlog.health.listenAddress"
      [ (one "health" { services.paramant.ctlog.health.openFirewall = true; }) ])
    (fires "moving the state directory" "must stay /var/lib/paramant-relay-health"
      [ (one "health" { services.paramant.relays.health.settings.state_dir = "/srv/relay"; }) ])
    (fires "the admin panel without relays" "enable at least one" [ { services.paramant.admin.enable = true; } ])
    (fires "a plain-HTTP license server" "must be an https:// URL"
      [ (one "health" { services.paramant.license = { enable = true; serverUrl = "http://license.example"; }; }) ])
    (fires "the license client without its sector's log" "records every check-in in the legal sector's log"
      [ (one "health" { services.paramant.license = { enable = true; sector = "legal"; }; }) ])
    (fires "moving the license client's state directory" "must stay /var/lib/paramant-license"
      [ (one "health" { services.paramant.license = { enable = true; settings.state_dir = "/srv/license"; }; }) ])
    (fires "the admin panel with a sector that has a log but no relay" "legal has a log and no relay"
      [ (one "health" { services.paramant.admin.enable = true; services.paramant.ctlog.legal = { }; }) ])
    (fires "moving the admin panel's state directory" "must stay /var/lib/paramant-admin"
      [ (one "health" { services.paramant.admin = { enable = true; settings.state_dir = "/srv/admin"; }; }) ])
    (fires "the admin panel's internal API off loopback" "must listen on loopback only"
      [ (one "health" { services.paramant.admin = { enable = true; settings.internal_listen = "0.0.0.0:8401"; }; }) ])
    (fires "the admin panel on a port a relay uses" "give each listener its own port"
      [ (one "health" { services.paramant.admin = { enable = true; port = 8001; }; }) ])
    (rejects "license.sector is one of the five sectors" [ (one "health" { services.paramant.license = { enable = true; sector = "mars"; }; }) ])
    (firesOS "paramantOS with a root password" "paramantOS ships no password"
      [ { users.users.root.hashedPassword = lib.mkForce "$6$x"; } ])
  ];
in
{
  inherit results;
  harness = { units = unitsOf harnessConfig; files = filesOf harnessConfig; };
  harnessFull = { units = unitsOf harnessFullConfig; files = filesOf harnessFullConfig; };
}

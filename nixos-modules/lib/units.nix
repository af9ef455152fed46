# The paramant systemd units and each instance's TOML config, as data: builtins only, so the
# NixOS modules and scripts/render-units.sh (Debian's nix-instantiate, for the Debian systemd
# harness and the security scores) use the very same settings.
#
# Result:
#   units.<file name> = { Unit = {...}; Service = {...}; Install = {...}; }  (a list value is
#                        one `Key=` line per element; "" renders as an empty assignment)
#   files.<path>      = { text; mode; }   configs and the secrets script, paths relative to /
#   instances         = the unit names `paramant.target` wants
#   ports.<sector>    = { relay; relayInternal; ctlogPublic; ctlogInternal; }
#
# Layout (one log and one relay per sector; sector n is its index in `allSectors`):
#   paramant-relay@S   public 0.0.0.0:8000+n, internal (admin panel) 127.0.0.1:8300+n
#   paramant-ctlog@S   public 127.0.0.1:8100+n (the relay forwards CT reads), internal
#                      127.0.0.1:8200+n (relays only, X-Internal-Auth)
#   paramant-admin     (services ∋ "admin") accounts + admin panel: public 127.0.0.1:8400 (behind
#                      a TLS proxy), internal /v2/user/* 127.0.0.1:8401; drives every relay's
#                      internal API and appends admin actions to the first sector's log
#   state              /var/lib/paramant-{ctlog,relay}-S, /var/lib/paramant-admin (StateDirectory, DynamicUser)
#   config             /etc/paramant/{ctlog,relay}/S.toml
#   credentials        systemd credential store, /etc/credstore (or /run/credstore):
#                        paramant-S.ctlog-internal-token  ctlog ⇄ relay (made by paramant-secrets)
#                        paramant-S.relay-internal-token  admin ⇄ relay (made by paramant-secrets)
#                        paramant-ctlog-S.log-key         optional; absent → the log generates its
#                                                         key in its own state directory
#                        paramant-admin.totp-key          seals the users' TOTP secrets (made by
#                                                         paramant-secrets when admin is enabled)
{
  # Which sectors get an instance of each service.
  sectors ? [ "relay" "health" "legal" "finance" "iot" ]
  # Which services get instances: "ctlog", "relay", "admin", "license".
, services ? [ "ctlog" "relay" ]
, ctlogExe ? "/usr/local/bin/paramant-ctlog"
, relayExe ? "/usr/local/bin/paramant-relay"
  # Where the secrets script lives (NixOS passes a store path and ignores files.<it>).
, secretsExe ? "/usr/local/lib/paramant/paramant-secrets"
  # Each log's relay_id is "<sector>.<domain>".
, domain ? "paramant.local"
, relayListenAddress ? "0.0.0.0"
  # Addresses beyond localhost the log may talk to (gossip peers); relays talk to anyone.
, ctlogAllowedIPs ? [ ]
, relayAllowedIPs ? [ "any" ]
  # The service pings at half this; a wedged event loop is killed (SIGABRT) and restarted.
, watchdogSec ? 10
  # "required": refuse to start unless landlock is fully enforced; "best-effort": log and go on.
, landlock ? "required"
  # "plain": LoadCredential=; "encrypted": LoadCredentialEncrypted= (systemd-creds) for the log key.
, logKeyCredential ? "plain"
  # Extra settings merged into each instance's config: sector -> attrset.
, ctlogSettings ? (_sector: { })
, relaySettings ? (_sector: { })
, adminExe ? "/usr/local/bin/paramant-admin"
  # The panel's public address (put a TLS-terminating proxy in front of it) and its URL.
, adminListen ? "127.0.0.1:8400"
, adminPublicUrl ? "http://127.0.0.1:8400"
, adminSettings ? { }
  # The panel's internal listener (/v2/user/* for the relays, loopback only).
, adminInternalListen ? "127.0.0.1:8401"
  # paramant-license (when "license" is in `services`): the check-in endpoint, the sector whose
  # log records the check-ins and remote actions, and telemetry (off by default).
, licenseExe ? "/usr/local/bin/paramant-license"
, licenseServerUrl ? "https://license.paramant.app/v1/license/check"
, licenseSector ? builtins.head sectors
, licenseTelemetry ? false
  # Extra settings merged into /etc/paramant/license.toml.
, licenseSettings ? { }
  # Where the offline `plk_` token comes from, for paramant-license and every relay: a name in
  # the credential store (paramant-secrets leaves an empty one there: Community Edition), or an
  # absolute path (agenix, sops-nix) that systemd reads at start.
, licenseTokenCredential ? "paramant.license-token"
}:
let
  inherit (builtins) attrNames concatLists concatStringsSep elem filter genList
    hasAttr isAttrs length listToAttrs map throw;

  allSectors = [ "relay" "health" "legal" "finance" "iot" ];
  hardening = import ./hardening.nix;
  toTOML = (import ./toml.nix).toTOML;

  indexOf = sector:
    let hits = filter (i: builtins.elemAt allSectors i == sector) (genList (i: i) (length allSectors));
    in if hits == [ ] then throw "paramant units: unknown sector \"${sector}\"; use one of ${concatStringsSep ", " allSectors}"
       else builtins.head hits;

  portsOf = sector:
    let n = indexOf sector; in {
      relay = 8000 + n;
      ctlogPublic = 8100 + n;
      ctlogInternal = 8200 + n;
      relayInternal = 8300 + n;
    };

  # recursiveUpdate without nixpkgs: `b` wins, attrsets merge.
  merge = a: b: a // listToAttrs (map (k: {
    name = k;
    value = if hasAttr k a && isAttrs a.${k} && isAttrs b.${k} then merge a.${k} b.${k} else b.${k};
  }) (attrNames b));

  credstoreName = sector: what: "paramant-${sector}.${what}";
  sandbox = { inherit landlock; };

  ctlogConfig = sector:
    let p = portsOf sector; in
    merge {
      relay_id = "${sector}.${domain}";
      inherit sector sandbox;
      state_dir = "/var/lib/paramant-ctlog-${sector}";
      public_listen = "127.0.0.1:${toString p.ctlogPublic}";
      internal_listen = "127.0.0.1:${toString p.ctlogInternal}";
      # The relay on this host proxies the public CT endpoints to the log: its X-Real-IP names
      # the client for the per-IP gossip ingest limit (from anyone else the header is ignored).
      gossip.trusted_proxies = [ "127.0.0.1" ];
    } (ctlogSettings sector);

  relayConfig = sector:
    let p = portsOf sector; in
    merge {
      inherit sector sandbox;
      state_dir = "/var/lib/paramant-relay-${sector}";
      public_listen = "${relayListenAddress}:${toString p.relay}";
      internal_listen = "127.0.0.1:${toString p.relayInternal}";
      ctlog = {
        internal_url = "http://127.0.0.1:${toString p.ctlogInternal}";
        public_url = "http://127.0.0.1:${toString p.ctlogPublic}";
      };
    } (merge (if withLicense then relayLicense else { })
      (relaySettings sector // (if elem "admin" services then { user_accounts_url = adminPublicUrl; } else { })));

  # The admin reads each relay's internal token and the first sector's log token from its
  # credentials directory (systemd's LoadCredential=, below).
  adminCredentials = "/run/credentials/paramant-admin.service";
  adminConfig = merge {
    inherit sandbox;
    state_dir = "/var/lib/paramant-admin";
    public_listen = adminListen;
    public_url = adminPublicUrl;
    internal_listen = adminInternalListen;
    relays = map (s: {
      sector = s;
      internal_url = "http://127.0.0.1:${toString (portsOf s).relayInternal}";
      token_file = "${adminCredentials}/relay-${s}-token";
    }) sectors;
    ctlog = {
      internal_url = "http://127.0.0.1:${toString (portsOf (builtins.head sectors)).ctlogInternal}";
      token_file = "${adminCredentials}/ctlog-token";
    };
  } (merge (if withLicense then relayLicense else { }) adminSettings);

  # Settings shared by both long-running templates.
  serviceCommon = hardening // {
    Type = "notify";
    NotifyAccess = "main";
    WatchdogSec = "${toString watchdogSec}s";
    Restart = "on-failure";
    RestartSec = "2s";
    TimeoutStartSec = "60s";
    # Long enough for a relay to drain downloads in flight.
    TimeoutStopSec = "30s";
    StateDirectoryMode = "0700";
    IPAddressDeny = "any";
  };
  unitCommon = {
    After = [ "network.target" "paramant-secrets.service" ];
    Wants = [ "paramant-secrets.service" ];
    PartOf = [ "paramant.target" ];
    # Restart=on-failure gives up after 10 failed starts a minute (then the unit is "failed").
    StartLimitIntervalSec = "60s";
    StartLimitBurst = 10;
  };

  ctlogUnit = {
    Unit = unitCommon // {
      Description = "paramant transparency log, %i sector";
      AssertPathExists = "/etc/paramant/ctlog/%i.toml";
    };
    Service = serviceCommon // {
      ExecStart = "${ctlogExe} run --config /etc/paramant/ctlog/%i.toml";
      # Without User=, every instance of a template shares one dynamic user named after the
      # template; each sector's log gets its own.
      User = "paramant-ctlog-%i";
      StateDirectory = "paramant-ctlog-%i";
      IPAddressAllow = [ "localhost" ] ++ ctlogAllowedIPs;
    } // (if logKeyCredential == "encrypted"
      then { LoadCredentialEncrypted = [ "log-key:paramant-ctlog-%i.log-key" ];
             LoadCredential = [ "internal-token:${credstoreName "%i" "ctlog-internal-token"}" ]; }
      else if logKeyCredential == "plain"
      then { LoadCredential = [ "log-key:paramant-ctlog-%i.log-key"
                                "internal-token:${credstoreName "%i" "ctlog-internal-token"}" ]; }
      else throw "paramant units: logKeyCredential must be \"plain\" or \"encrypted\"");
    Install = { };
  };

  relayUnit = let base = {
    Unit = unitCommon // {
      Description = "paramant relay (data plane), %i sector";
      After = unitCommon.After ++ [ "paramant-ctlog@%i.service" ];
      Wants = unitCommon.Wants ++ [ "paramant-ctlog@%i.service" ];
      AssertPathExists = "/etc/paramant/relay/%i.toml";
    };
    Service = serviceCommon // {
      ExecStart = "${relayExe} run --config /etc/paramant/relay/%i.toml";
      User = "paramant-relay-%i";
      StateDirectory = "paramant-relay-%i";
      IPAddressAllow = relayAllowedIPs;
      LoadCredential = [
        "ctlog-internal-token:${credstoreName "%i" "ctlog-internal-token"}"
        "internal-token:${credstoreName "%i" "relay-internal-token"}"
      ];
      # Many concurrent clients.
      LimitNOFILE = 65536;
    };
    Install = { };
  }; in if !withLicense then base else base // {
    # The offline token, and the state paramant-license publishes (after it, so that the
    # directory exists when the relay's landlock rules are made).
    Unit = base.Unit // {
      After = base.Unit.After ++ [ "paramant-license.service" ];
      Wants = base.Unit.Wants ++ [ "paramant-license.service" ];
    };
    Service = base.Service // {
      LoadCredential = base.Service.LoadCredential ++ [ "license-token:${licenseTokenCredential}" ];
      SupplementaryGroups = [ licenseGroup ];
    };
  };

  adminUnit = let base = {
    Unit = unitCommon // {
      Description = "paramant accounts and admin panel";
      After = unitCommon.After ++ map (s: "paramant-relay@${s}.service") sectors;
      Wants = unitCommon.Wants;
      AssertPathExists = "/etc/paramant/admin.toml";
    };
    Service = serviceCommon // {
      ExecStart = "${adminExe} run --config /etc/paramant/admin.toml";
      User = "paramant-admin";
      StateDirectory = "paramant-admin";
      # Loopback only: relays' and the log's internal APIs, and the proxy in front of the panel.
      IPAddressAllow = [ "localhost" ];
      LoadCredential = [
        "totp-key:paramant-admin.totp-key"
        "ctlog-token:${credstoreName (builtins.head sectors) "ctlog-internal-token"}"
      ] ++ map (s: "relay-${s}-token:${credstoreName s "relay-internal-token"}") sectors;
    };
    Install = { };
  }; in if !withLicense then base else base // {
    # As each relay: the offline token and the published state (group paramant-license).
    Unit = base.Unit // {
      After = base.Unit.After ++ [ "paramant-license.service" ];
      Wants = base.Unit.Wants ++ [ "paramant-license.service" ];
    };
    Service = base.Service // {
      LoadCredential = base.Service.LoadCredential ++ [ "license-token:${licenseTokenCredential}" ];
      SupplementaryGroups = [ licenseGroup ];
    };
  };

  # Shared secrets two dynamic users both need cannot live in either's private state
  # directory, so this root oneshot makes them once, into the credential store, and systemd
  # hands each unit a copy through LoadCredential=.
  tokenNames = concatLists (map (s: [
    (credstoreName s "ctlog-internal-token")
    (credstoreName s "relay-internal-token")
  ]) sectors) ++ (if elem "admin" services then [ "paramant-admin.totp-key" ] else [ ]);
  secretsScript = ''
    #!/bin/bash
    # paramant-secrets: creates each missing shared token in /etc/credstore (mode 0600, root);
    # existing files, including ones an operator placed there, are kept as they are. One read
    # of the kernel RNG for all of them: process starts are what costs time on a slow boot.
    set -euo pipefail
    umask 077
    names=(${concatStringsSep " " tokenNames})
    random="$(od -An -v -N$((32 * ''${#names[@]})) -tx1 /dev/urandom | tr -d ' \n')"
    for i in "''${!names[@]}"; do
      file="/etc/credstore/''${names[$i]}"
      if [ ! -s "$file" ]; then
        printf 'pit_%s' "''${random:$((64 * i)):64}" > "$file.tmp"
        mv "$file.tmp" "$file"
        echo "paramant-secrets: created ''${names[$i]}"
      fi
    done
  '' + (if withLicense then licenseSecrets else "");
  secretsUnit = {
    Unit = {
      Description = "paramant shared service tokens (first boot)";
      Before = [ "paramant.target" ];
    };
    Service = hardening // {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = secretsExe;
      # Root, so the tokens belong to no service's dynamic user; but nothing else.
      DynamicUser = false;
      ConfigurationDirectory = "credstore";
      ConfigurationDirectoryMode = "0700";
      PrivateNetwork = true;
      IPAddressDeny = "any";
      RestrictAddressFamilies = "none";
    } // (if withLicense then {
      # /run/paramant-license, where paramant-license publishes its state for the relays and the
      # admin (all of group paramant-license); it lives as long as this unit stays active.
      RuntimeDirectory = "paramant-license";
      RuntimeDirectoryMode = "0770";
      Group = licenseGroup;
    } else { });
    Install = { };
  };

  instanceNames = concatLists (map (s:
    (if elem "ctlog" services then [ "paramant-ctlog@${s}.service" ] else [ ])
    ++ (if elem "relay" services then [ "paramant-relay@${s}.service" ] else [ ])) sectors)
    ++ (if elem "admin" services then [ "paramant-admin.service" ] else [ ])
    ++ (if elem "license" services then [ "paramant-license.service" "paramant-license.timer" ] else [ ]);

  target = {
    Unit = {
      Description = "paramant services";
      Wants = instanceNames;
      After = [ "network.target" ];
    };
    Install = { WantedBy = [ "multi-user.target" ]; };
  };

  configFiles = listToAttrs (concatLists (map (s:
    (if elem "ctlog" services then [{ name = "etc/paramant/ctlog/${s}.toml";
      value = { text = toTOML (ctlogConfig s); mode = "0644"; }; }] else [ ])
    ++ (if elem "relay" services then [{ name = "etc/paramant/relay/${s}.toml";
      value = { text = toTOML (relayConfig s); mode = "0644"; }; }] else [ ])) sectors))
    // (if elem "admin" services then { "etc/paramant/admin.toml" = { text = toTOML adminConfig; mode = "0644"; }; } else { });

  stripSlash = p: builtins.substring 1 (builtins.stringLength p) p;

  # ---- paramant-license: the license client (a oneshot at start and every 6 hours) --------
  # It publishes its state (the last signed capability set, re-verified by every reader) to
  # /run/paramant-license/state.json; each relay reads it and the offline token (credential
  # paramant.license-token; empty = Community Edition) and is ordered after it, so the
  # directory exists when the relay's landlock rules are made.
  withLicense = elem "license" services;
  # The static group that may read the published state (it holds the operator's token): the
  # NixOS module declares it (users.groups), the Debian rootfs gets it from sysusers.d below.
  licenseGroup = "paramant-license";
  licenseState = "/run/paramant-license/state.json";
  licenseConfig = let p = portsOf licenseSector; in merge {
    server_url = licenseServerUrl;
    state_dir = "/var/lib/paramant-license";
    publish_file = licenseState;
    telemetry = licenseTelemetry;
    inherit sandbox;
    license = { };
    ctlog = {
      internal_url = "http://127.0.0.1:${toString p.ctlogInternal}";
      public_url = "http://127.0.0.1:${toString p.ctlogPublic}";
    };
    relay.internal_url = "http://127.0.0.1:${toString p.relayInternal}";
  } licenseSettings;
  licenseUnit = {
    Unit = {
      Description = "paramant license check-in (offline token, signed capability set)";
      After = [ "network-online.target" "paramant-secrets.service" "paramant-ctlog@${licenseSector}.service" ];
      Wants = [ "network-online.target" "paramant-secrets.service" "paramant-ctlog@${licenseSector}.service" ];
      PartOf = [ "paramant.target" ];
      AssertPathExists = "/etc/paramant/license.toml";
    };
    Service = hardening // {
      Type = "oneshot";
      ExecStart = "${licenseExe} run --config /etc/paramant/license.toml";
      # Its dynamic user must not be named like the static group: systemd.exec(5) (DynamicUser=)
      # requires a static user of that name then, and the unit would not start.
      User = "paramant-license-client";
      # A static group (it exists, so DynamicUser= uses it rather than allocating one): the
      # directory (0750) and the published state (0640, set by the client whatever UMask=) are
      # group paramant-license, which each relay and the admin have as a supplementary group.
      Group = licenseGroup;
      StateDirectory = "paramant-license";
      StateDirectoryMode = "0700";
      # The published state's directory is paramant-secrets' RuntimeDirectory= (root, group
      # paramant-license, 0770, kept while that oneshot stays active): one of this DynamicUser=
      # oneshot would be moved under /run/private (0700) when it exits, out of every relay's reach.
      ReadWritePaths = [ "/run/paramant-license" ];
      # One check-in: connect, TLS, answer (timeout_secs 30) and the log appends.
      TimeoutStartSec = "120s";
      # Outbound: the license server (any address, port 443 only by landlock) and loopback.
      IPAddressAllow = [ "any" ];
      LoadCredential = [
        "license-token:${licenseTokenCredential}"
        "ctlog-internal-token:${credstoreName licenseSector "ctlog-internal-token"}"
        "relay-internal-token:${credstoreName licenseSector "relay-internal-token"}"
      ];
    };
    Install = { };
  };
  licenseTimer = {
    Unit = { Description = "paramant license check-in every 6 hours"; PartOf = [ "paramant.target" ]; };
    Timer = {
      OnUnitActiveSec = "6h";
      RandomizedDelaySec = "15min";
      Persistent = true;
      Unit = "paramant-license.service";
    };
    Install = { };
  };
  licenseSecrets = ''
    # paramant-license: an empty token file means Community Edition (the unit's credential must exist).
    [ -e /etc/credstore/paramant.license-token ] || : > /etc/credstore/paramant.license-token
  '';
  # Each relay and the admin: the offline token and the published state.
  relayLicense = {
    license = { state_file = licenseState; };
  };
in
{
  units = {
    "paramant-ctlog@.service" = ctlogUnit;
    "paramant-relay@.service" = relayUnit;
    "paramant-secrets.service" = secretsUnit;
    "paramant.target" = target;
  } // (if elem "admin" services then { "paramant-admin.service" = adminUnit; } else { })
    // (if withLicense then {
    "paramant-license.service" = licenseUnit;
    "paramant-license.timer" = licenseTimer;
  } else { });
  files = configFiles // {
    ${stripSlash secretsExe} = { text = secretsScript; mode = "0755"; };
  } // (if withLicense then {
    "etc/paramant/license.toml" = { text = toTOML licenseConfig; mode = "0644"; };
    "usr/lib/sysusers.d/paramant-license.conf" = {
      text = "# The group that may read /run/paramant-license/state.json (rendered from units.nix).\ng ${licenseGroup} -\n";
      mode = "0644";
    };
  } else { });
  instances = instanceNames;
  ports = listToAttrs (map (s: { name = s; value = portsOf s; }) sectors);
  inherit secretsScript;
  # For the NixOS modules: the raw settings, before TOML rendering.
  settings = {
    ctlog = listToAttrs (map (s: { name = s; value = ctlogConfig s; }) sectors);
    relay = listToAttrs (map (s: { name = s; value = relayConfig s; }) sectors);
    admin = adminConfig;
    license = licenseConfig;
  };
}

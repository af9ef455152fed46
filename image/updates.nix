# Appliance updates: A/B with systemd-sysupdate (UKI + store + its verity hashes), installed only
# when the release's two signatures verify (`paramant release verify`, offline, with the public
# keys built into this image) AND the operator approved that version; never pushed silently.
#
#   paramant-update-check.timer   every 6 h: fetch the release manifest and its signatures; if
#                                 a newer version is signed by both keys, fetch its artifacts,
#                                 verify their SHA-256, and *offer* it: a banner in the journal
#                                 and /run/paramant-update/offer (the admin panel shows it).
#   paramant-update-check.path    also when paramant-license's state changes (a license update
#                                 offer): the same check, sooner; nothing else.
#   paramant-update approve V     the operator's yes (console, or the admin panel): verifies the
#                                 offered files again and installs them with systemd-sysupdate
#                                 into the other slot; the running version stays as fallback.
#   paramant-health.service       after a boot, every relay must answer /health within 2 min;
#                                 only then is boot-complete.target reached and the new UKI
#                                 blessed (systemd-bless-boot). Otherwise the boot fails, the UKI's
#                                 tries counter (+3) runs out and systemd-boot starts the previous
#                                 version: automatic rollback.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.paramantOS.update;
  version = config.system.image.version;
  state = "/var/lib/paramant-update";
  definitions = "/etc/paramant/sysupdate.d";
  relayPorts = map (s: config.services.paramant.relays.${s}.port) (lib.attrNames config.services.paramant.relays);

  ini = lib.generators.toINI { listsAsDuplicateKeys = true; };
  transfer = { source, target }: {
    Transfer.ProtectVersion = "%A";
    Source = { Type = "regular-file"; Path = "${state}/verified"; MatchPattern = source; };
    Target = target;
  };

  paramantUpdate = pkgs.writeShellApplication {
    name = "paramant-update";
    runtimeInputs = [ config.services.paramant.package pkgs.curl pkgs.coreutils pkgs.systemd ];
    text = ''
      state=${state}
      keys=${cfg.publicKeys}
      origin=${lib.escapeShellArg (toString cfg.source)}
      current=${lib.escapeShellArg version}
      die() { echo "paramant-update: $*" >&2; exit 1; }
      mkdir -p "$state"
      fetch() { curl --fail --silent --show-error --proto =https --tlsv1.2 --max-time 600 -o "$2" "$origin/$1"; }

      case "''${1:-}" in
        check)
          dir="$(mktemp -d "$state/incoming.XXXXXX")"
          trap 'rm -rf "$dir"' EXIT
          for f in manifest.json manifest.json.sig manifest.json.ml-dsa-65.sig; do fetch "$f" "$dir/$f"; done
          # Both signatures first; only a signed manifest names files to download.
          paramant release show --public-keys "$keys" "$dir/manifest.json" > "$dir/show"
          offered="$(sed -n 's/^version //p' "$dir/show")"
          [ "$offered" != "$current" ] || { echo "paramant-update: $current is the newest release"; exit 0; }
          [ "$(printf '%s\n%s\n' "$current" "$offered" | sort -V | tail -1)" = "$offered" ] \
            || { echo "paramant-update: release $offered is older than $current; ignored"; exit 0; }
          while read -r what name _; do
            [ "$what" = artifact ] && fetch "$name" "$dir/$name"
          done < "$dir/show"
          paramant release verify --public-keys "$keys" "$dir/manifest.json"
          rm -rf "$state/offered-$offered"
          mv "$dir" "$state/offered-$offered"
          trap - EXIT
          echo "$offered" > "$state/offered"
          mkdir -p /run/paramant-update
          echo "paramantOS $offered is available (signed, verified). Install: paramant-update approve $offered" \
            | tee /run/paramant-update/offer
          ;;
        approve)
          want="''${2:?usage: paramant-update approve VERSION}"
          if [ ! -f "$state/offered" ] || [ "$(cat "$state/offered")" != "$want" ]; then
            die "$want is not the offered version (run: paramant-update check)"
          fi
          echo "$want" > "$state/approved"
          systemctl start paramant-update-install.service
          ;;
        install)
          want="$(cat "$state/approved" 2>/dev/null)" || die "nothing approved"
          dir="$state/offered-$want"
          # Verified again right before use: the files could have changed since the offer.
          paramant release verify --public-keys "$keys" "$dir/manifest.json"
          rm -rf "$state/verified" && mkdir -p "$state/verified"
          cp "$dir"/paramantOS_* "$state/verified/"
          systemd-sysupdate --definitions=${definitions} update "$want"
          rm -f "$state/approved" "$state/offered" /run/paramant-update/offer
          echo "paramant-update: installed $want next to $current; it starts at the next boot and is kept only if healthy"
          ;;
        *) die "usage: paramant-update check | approve VERSION | install" ;;
      esac
    '';
  };
in
{
  options.paramantOS.update = {
    publicKeys = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression "./release-keys/paramant-release.pub";
      description = ''
        The project's release public keys (`paramant release keygen`, both ECDSA P-256 and
        ML-DSA-65). Updates are off without them: an appliance installs nothing it cannot verify.
      '';
    };
    source = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://releases.paramant.app/paramantOS/latest";
      description = "HTTPS location of the release: manifest.json, its two signatures, the artifacts.";
    };
  };

  config = lib.mkMerge [
    {
      warnings = lib.optional (cfg.publicKeys == null || cfg.source == null)
        "paramantOS.update.publicKeys or .source is unset: this image will not offer updates.";

      # Rollback: a boot counts as good only once every relay is healthy.
      systemd.additionalUpstreamSystemUnits = [ "systemd-bless-boot.service" "boot-complete.target" ];
      systemd.services.paramant-health = {
        description = "paramantOS is healthy (every relay answers /health)";
        wantedBy = [ "boot-complete.target" ];
        requiredBy = [ "boot-complete.target" ];
        before = [ "boot-complete.target" ];
        after = [ "paramant.target" ];
        path = [ pkgs.curl ];
        # A failed health check reboots at once, which uses up the new UKI's tries quickly.
        unitConfig.FailureAction = "reboot";
        serviceConfig = { Type = "oneshot"; RemainAfterExit = true; TimeoutStartSec = "150s"; };
        script = ''
          for port in ${toString relayPorts}; do
            deadline=$((SECONDS + 120))
            until curl -fsk --max-time 5 "https://127.0.0.1:$port/health" >/dev/null; do
              [ "$SECONDS" -lt "$deadline" ] || { echo "relay on port $port is not healthy"; exit 1; }
              sleep 2
            done
          done
        '';
      };
    }
    (lib.mkIf (cfg.publicKeys != null && cfg.source != null) {
      environment.systemPackages = [ paramantUpdate config.services.paramant.package ];
      # The relays publish the same keys the updater trusts.
      services.paramant.relays = lib.genAttrs config.paramantOS.sectors (_: { releasePublicKeys = cfg.publicKeys; });

      environment.etc = lib.mapAttrs' (name: value: lib.nameValuePair "paramant/sysupdate.d/${name}.transfer" { text = ini value; }) {
        "10-store-verity" = transfer {
          source = "paramantOS_@v.store-verity.raw";
          target = { Type = "partition"; Path = "auto"; MatchPattern = "store-verity_@v"; MatchPartitionType = "usr-verity"; ReadOnly = 1; };
        };
        "20-store" = transfer {
          source = "paramantOS_@v.store.raw";
          target = { Type = "partition"; Path = "auto"; MatchPattern = "store_@v"; MatchPartitionType = "usr"; ReadOnly = 1; };
        };
        "30-uki" = transfer {
          source = "paramantOS_@v.efi";
          target = {
            Type = "regular-file";
            Path = "/EFI/Linux";
            PathRelativeTo = "boot";
            MatchPattern = [ "paramantOS_@v+@l-@d.efi" "paramantOS_@v+@l.efi" "paramantOS_@v.efi" ];
            Mode = "0444";
            # Boot counting: three tries to reach boot-complete.target, then the old version.
            TriesLeft = 3;
            TriesDone = 0;
            InstancesMax = 2;
          };
        };
      };

      systemd.services.paramant-update-check = {
        description = "Look for a signed paramantOS release (offers it; installs nothing)";
        after = [ "network-online.target" ];
        wants = [ "network-online.target" ];
        serviceConfig = { Type = "oneshot"; ExecStart = "${paramantUpdate}/bin/paramant-update check"; PrivateTmp = true; };
      };
      systemd.timers.paramant-update-check = {
        wantedBy = [ "timers.target" ];
        timerConfig = { OnBootSec = "15min"; OnUnitActiveSec = "6h"; RandomizedDelaySec = "30min"; };
      };
      # The license server's *offer an update* (a field of its signed check-in answer, shown as
      # a banner in the admin panel) only makes this machine look now rather than at the next
      # timer: what is offered for installation is still what the release's own signatures
      # verify, and it is installed only on `paramant-update approve`.
      systemd.paths.paramant-update-check = lib.mkIf config.services.paramant.license.enable {
        wantedBy = [ "paths.target" ];
        pathConfig.PathChanged = "/run/paramant-license/state.json";
      };
      systemd.services.paramant-update-install = {
        description = "Install the paramantOS release the operator approved (A/B, systemd-sysupdate)";
        serviceConfig = { Type = "oneshot"; ExecStart = "${paramantUpdate}/bin/paramant-update install"; };
      };
    })
  ];
}

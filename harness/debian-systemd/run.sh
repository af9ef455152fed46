#!/usr/bin/env bash
# The Debian systemd harness: boots the rendered paramant units and the release binaries on
# Debian bookworm's real systemd — under systemd-nspawn (fast, twice) and under
# qemu-system-x86_64 -accel tcg with a real kernel and a persistent disk (boot, reboot) — and
# asserts on what the booted system reports: every unit active under a dynamic user, READY=1,
# landlock fully enforced, the relay answering, the log surviving restart and reboot, systemd
# restarting a killed and a wedged service, no failed unit. It is not a NixOS VM test: the
# units come from the same Nix data the NixOS modules import, but the OS is Debian.
#
# usage: harness/debian-systemd/run.sh [--no-build] [--no-qemu] [--ctlog-only] [--keep]
#   --no-build    use the release binaries already in the cargo target dir
#   --no-qemu     nspawn only (the fast half)
#   --ctlog-only  leave the relay out even when it builds (reported as a skip, loudly)
#   --keep      keep the work directory (rootfs copy, disk image, logs) even when green
# Needs root, and on the host: debootstrap, systemd-container, nix-bin, e2fsprogs, python3
# (installed when missing); the rootfs, kernel and qemu are built into $PARAMANT_HARNESS_CACHE.
# Exits non-zero when any check fails; ends with a summary and "N passed, N failed".
set -euo pipefail
source "$(dirname "$0")/lib.sh"

build=yes qemu=yes keep=no relay=yes
for arg in "$@"; do
  case "$arg" in
    --no-build) build=no ;;
    --no-qemu) qemu=no ;;
    --ctlog-only) relay=no ;;
    --keep) keep=yes ;;
    *) die "unknown option $arg (see the header of $0)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, nspawn, qemu images)"
total_start=$EPOCHREALTIME

need_host_packages debootstrap:debootstrap systemd-nspawn:systemd-container \
  nix-instantiate:nix-bin mkfs.ext4:e2fsprogs python3:python3 nsenter:util-linux

work="$PARAMANT_HARNESS_CACHE/run"
rm -rf "$work"
mkdir -p "$work/logs"
results="$work/logs/checks.txt"
: > "$results"
export TIMINGS_FILE="$work/logs/timings.txt"
: > "$TIMINGS_FILE"

# ---- binaries -------------------------------------------------------------------------------
target_dir="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bins=(paramant-ctlog)
[ "$relay" = no ] || ! grep -qs 'name = "paramant-relay"' "$REPO"/crates/relay/Cargo.toml || bins+=(paramant-relay)
[ "$relay" = no ] || ! grep -qs 'name = "paramant-admin"' "$REPO"/crates/admin/Cargo.toml || bins+=(paramant-admin)
[ "$relay" = no ] || ! grep -qs 'name = "paramant-license"' "$REPO"/crates/license-service/Cargo.toml || bins+=(paramant-license)
if [ "$build" = yes ]; then
  timed "cargo build --release (${bins[*]})" \
    bash -c "cd '$REPO' && cargo build --release --locked $(printf -- '--bin %s ' "${bins[@]}")"
fi
services=ctlog
relay_note=""
[ -x "$target_dir/release/paramant-ctlog" ] || die "no $target_dir/release/paramant-ctlog (drop --no-build)"
if [ "$relay" = no ]; then
  relay_note="--ctlog-only given: relay units, relay checks and the SDK round trip were NOT run"
  log "!!!!! SKIPPING RELAY: $relay_note"
elif [ -x "$target_dir/release/paramant-relay" ]; then
  services=ctlog,relay
  # The accounts panel rides along with the relays when it is built.
  [ ! -x "$target_dir/release/paramant-admin" ] || services=ctlog,relay,admin
  # The license client too (a check-in against the reference license server inside the guest).
  [ ! -x "$target_dir/release/paramant-license" ] || services="$services,license"
else
  relay_note="paramant-relay is not built ($target_dir/release/paramant-relay missing): relay units, relay checks and the SDK round trip were NOT run"
  log "!!!!! SKIPPING RELAY: $relay_note"
fi

# ---- rootfs, units, staged tree ---------------------------------------------------------------
# qemu is fetched while debootstrap runs: both mostly wait for the package mirror.
if [ "$qemu" = yes ]; then
  timed "qemu-system-x86 (Debian, cached; in parallel)" "$HARNESS_DIR/fetch-qemu.sh" > "$work/qemu-root" &
  fetch_qemu=$!
fi
rootfs="$(timed "rootfs (debootstrap, cached)" "$HARNESS_DIR/build-rootfs.sh")"
if [ "$qemu" = yes ]; then
  wait "$fetch_qemu" || die "fetching qemu failed"
  qemu_root="$(cat "$work/qemu-root")"
fi

# The license scenario: the reference license server runs inside the guest on 127.0.0.1:8443
# with the test CA of fixtures/license-test-ca and the fixture ML-DSA-65 signing key, which
# the license client, the relays and the admin are told to trust; the db knows an offline token
# issued with the fixture Ed25519 key (staged as the license-token credential).
license_args=()
license_server="$work/license-server"
if [[ "$services" == *license* ]]; then
  lic="$target_dir/release/paramant-license"
  mkdir -p "$license_server"
  cp "$REPO"/fixtures/license-test-ca/{ca.pem,server.pem,server-key.pem} "$license_server/"
  python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(open(sys.argv[1]).read().strip()))' \
    "$REPO/crates/license/fixtures/test-mldsa65-capability-signing.seed.hex" "$license_server/signing-key"
  chmod 0600 "$license_server/signing-key" "$license_server/server-key.pem"
  guest_dir=/var/lib/paramant-harness-license-server
  printf 'listen = "127.0.0.1:8443"\ncert_file = "%s/server.pem"\nkey_file = "%s/server-key.pem"\nsigning_key_file = "%s/signing-key"\ndb_file = "%s/db.json"\n' \
    "$guest_dir" "$guest_dir" "$guest_dir" "$guest_dir" > "$license_server/server.toml"
  sed "s#$guest_dir#$license_server#g" "$license_server/server.toml" > "$work/license-server-host.toml"
  ml_dsa_key="$("$lic" server public-key --config "$work/license-server-host.toml")"
  "$lic" issue --key "$REPO/crates/license/fixtures/test-ed25519-license-signing.seed.hex" --max-keys 50 \
    --expires 2099-01-01 --issued-to "Debian systemd harness" > "$work/license-token"
  "$lic" server add --db "$license_server/db.json" --token "$(cat "$work/license-token")" --tier pro --max-users 50
  rm -f "$license_server/db.lock"
  trust="license = { ml_dsa_keys = [ { key = \"$ml_dsa_key\"; } ]; };"
  license_args=(--arg licenseServerUrl '"https://127.0.0.1:8443/v1/license/check"'
    --arg licenseSettings "{ ca_file = \"$guest_dir/ca.pem\"; timeout_secs = 20; $trust }"
    --arg relaySettings "_: { $trust }" --arg adminSettings "{ $trust }")
fi

render_rc=0
timed "render units (nix-instantiate) + scores" \
  "$REPO/scripts/render-units.sh" --out "$work/rendered" --services "$services" "${license_args[@]}" \
  > "$work/logs/render.log" 2>&1 || render_rc=$?
cat "$work/logs/render.log" >&2
[ "$render_rc" = 0 ] || die "render-units failed or a unit is above the exposure threshold (log above)"

stage() {
  local root="$work/root"
  cp -a "$rootfs" "$root"
  rm -f "$root/.complete"
  install -m 0755 -t "$root/usr/local/bin" "$target_dir/release/paramant-ctlog"
  [ "$services" = ctlog ] || install -m 0755 -t "$root/usr/local/bin" "$target_dir/release/paramant-relay"
  case "$services" in *admin*) install -m 0755 -t "$root/usr/local/bin" "$target_dir/release/paramant-admin" ;; esac
  case "$services" in *license*)
    install -m 0755 -t "$root/usr/local/bin" "$target_dir/release/paramant-license"
    cp -a "$license_server" "$root/var/lib/paramant-harness-license-server"
    install -d -m 0700 "$root/etc/credstore"
    install -m 0600 "$work/license-token" "$root/etc/credstore/paramant.license-token" ;;
  esac
  (cd "$work/rendered" && cp -a etc usr "$root/")
  install -d "$root/usr/local/lib/paramant-harness"
  install -m 0644 "$work/rendered/units.json" "$root/usr/local/lib/paramant-harness/units.json"
  install -m 0755 -t "$root/usr/local/lib/paramant-harness" \
    "$HARNESS_DIR/guest/paramant-harness-checks" "$HARNESS_DIR/guest/run-phase" "$HARNESS_DIR/guest/sdk-round-trip"
  install -m 0644 -t "$root/etc/systemd/system" "$HARNESS_DIR/guest/paramant-harness.service"
  install -d "$root/etc/systemd/system/multi-user.target.wants"
  ln -s ../paramant.target "$root/etc/systemd/system/multi-user.target.wants/paramant.target"
  ln -s ../paramant-harness.service "$root/etc/systemd/system/multi-user.target.wants/paramant-harness.service"
}
timed "stage rootfs + binaries + units" stage
# For experiments only (CI never sets it): a script that may change the staged tree, e.g. a
# drop-in for a service still being written. Loudly reported, so a green run cannot hide it.
if [ -n "${PARAMANT_HARNESS_STAGE_HOOK:-}" ]; then
  log "!!!!! running stage hook $PARAMANT_HARNESS_STAGE_HOOK on the staged rootfs"
  "$PARAMANT_HARNESS_STAGE_HOOK" "$work/root"
  echo "CHECK [all] FAIL stage-hook — PARAMANT_HARNESS_STAGE_HOOK changed the staged system; not a valid run" >> "$results"
fi
if [ "$qemu" = yes ]; then
  # The disk is made before nspawn boots the tree, so the qemu boot is a first boot too.
  timed "disk image (mkfs.ext4 -d)" bash -c "truncate -s 2G '$work/disk.img' && mkfs.ext4 -q -L paramant -d '$work/root' '$work/disk.img'"
  cp "$work/root"/boot/vmlinuz-* "$work/vmlinuz"
  cp "$work/root"/boot/initrd.img-* "$work/initrd.img"
fi

# ---- boots ------------------------------------------------------------------------------------
failed=0
timed "nspawn: boot, checks, second boot, checks" \
  bash -c "'$HARNESS_DIR/boot-nspawn.sh' '$work/root' '$work/logs' | sed -u 's/^\(CHECK\|BOOT\) /\1 [nspawn] /' | tee -a '$results'; exit \${PIPESTATUS[0]}" \
  || failed=1
if [ "$qemu" = yes ]; then
  timed "qemu tcg: boot, checks, reboot, checks" \
    bash -c "'$HARNESS_DIR/boot-qemu.sh' '$qemu_root' '$work' | sed -u 's/^\(CHECK\|BOOT\) /\1 [qemu] /' | tee -a '$results'; exit \${PIPESTATUS[0]}" \
    || failed=1
else
  echo "CHECK [qemu] SKIP qemu — --no-qemu given" | tee -a "$results"
fi
[ -z "$relay_note" ] || echo "CHECK [all] SKIP relay — $relay_note" | tee -a "$results"

# ---- summary ------------------------------------------------------------------------------------
passed=$(grep -c '^CHECK \[[a-z]*\] PASS' "$results" || true)
failures=$(grep -c '^CHECK \[[a-z]*\] FAIL' "$results" || true)
skipped=$(grep -c '^CHECK \[[a-z]*\] SKIP' "$results" || true)
[ "$failures" = 0 ] || failed=1
[ "$passed" -gt 0 ] || failed=1
echo
echo "==== Debian systemd harness: summary"
echo "units and scores:"
sed 's/^/  /' "$work/rendered/scores.txt"
if [ "$failures" != 0 ]; then
  echo "failed checks:"
  grep '^CHECK \[[a-z]*\] FAIL' "$results" | sed 's/^CHECK /  /'
fi
if [ "$skipped" != 0 ]; then
  echo "SKIPPED (not run):"
  grep '^CHECK \[[a-z]*\] SKIP' "$results" | sed 's/^CHECK /  /'
fi
echo "guest boot times (systemd-analyze time):"
sed -n 's/^BOOT /  /p' "$results"
echo "timings:"
sed 's/^/  /' "$TIMINGS_FILE"
awk -v a="$total_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "  %-40s %7.1f s\n", "total", b - a }'
if [ "$failed" = 0 ] && [ "$keep" = no ]; then
  rm -rf "$work"
else
  echo "work directory kept: $work (logs in $work/logs)"
fi
echo "harness: $passed passed, $failures failed, $skipped skipped"
exit $failed

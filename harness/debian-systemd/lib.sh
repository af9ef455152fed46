# shellcheck shell=bash
# Shared helpers of the Debian systemd harness (sourced, not run): logging, timings, the cache
# directory, and host prerequisites. This harness boots the rendered units on Debian's systemd;
# it is not a NixOS VM test.

HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034  # used by the scripts that source this file
REPO="$(cd "$HARNESS_DIR/../.." && pwd)"
# Rootfs, kernel and qemu live outside the repository and are rebuilt when missing.
if [ -z "${PARAMANT_HARNESS_CACHE:-}" ]; then
  if [ -d /work ] && [ -w /work ]; then PARAMANT_HARNESS_CACHE=/work/cache/debian-systemd-harness
  else PARAMANT_HARNESS_CACHE=/var/cache/paramant-debian-systemd-harness; fi
fi
export PARAMANT_HARNESS_CACHE
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[harness %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Wall-clock timings, one line each in $TIMINGS_FILE (a file, so that steps run in command
# substitutions are counted too), printed in the summary.
TIMINGS_FILE="${TIMINGS_FILE:-/dev/null}"
timed() { # timed LABEL COMMAND...
  local label="$1" start rc=0
  shift
  start=$EPOCHREALTIME
  "$@" || rc=$?
  awk -v l="$label" -v a="$start" -v b="$EPOCHREALTIME" -v rc="$rc" \
    'BEGIN { printf "%-44s %7.1f s%s\n", l, b - a, (rc == 0 ? "" : "  (failed)") }' >> "$TIMINGS_FILE"
  return $rc
}

# Installs the Debian packages providing COMMANDs that are missing (pairs "command:package").
need_host_packages() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing host packages: ${missing[*]} (apt-get install them)"
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

# Polls COMMAND every 0.2 s until it succeeds or SECONDS pass.
wait_until() { # wait_until SECONDS COMMAND...
  local deadline=$(( $(date +%s) + $1 ))
  shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

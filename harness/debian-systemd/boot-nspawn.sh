#!/usr/bin/env bash
# Boots a staged rootfs under systemd-nspawn twice (a boot, then a second boot of the same
# tree, as after a reboot) and runs the in-guest checks through nsenter. Check lines go to
# stdout; logs to LOGDIR.
#
# usage: boot-nspawn.sh ROOT LOGDIR
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root="$1"
logdir="$2"
mkdir -p "$logdir"

# The container's PID 1 (a process whose innermost PID is 1, descending from nspawn).
leader_of() {
  local nspawn="$1" pid
  for pid in $(ps -o pid= --ppid "$nspawn") $(ps -o pid= --ppid "$(ps -o pid= --ppid "$nspawn" | head -1)" 2>/dev/null); do
    if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$pid/status" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

boot_and_check() { # boot_and_check PHASE
  local phase="$1" nspawn leader rc=0
  # --register=no --keep-unit: the host's PID 1 is not systemd. The landlock syscalls are
  # outside nspawn's default seccomp filter.
  systemd-nspawn --quiet --register=no --keep-unit --private-network --console=passive \
    --system-call-filter='landlock_create_ruleset landlock_add_rule landlock_restrict_self' \
    -D "$root" -b > "$logdir/nspawn-$phase.log" 2>&1 &
  nspawn=$!
  wait_until 60 leader_of "$nspawn" >/dev/null || { kill "$nspawn"; die "nspawn did not start (log: $logdir/nspawn-$phase.log)"; }
  leader="$(leader_of "$nspawn")"
  # systemd's private bus socket appears when PID 1 is up; the checks wait for the boot jobs.
  wait_until 60 test -S "/proc/$leader/root/run/systemd/private" || die "systemd in the container did not come up"
  nsenter -t "$leader" -a systemctl is-system-running --wait >/dev/null 2>&1 || true
  echo "BOOT $(nsenter -t "$leader" -a systemd-analyze time 2>/dev/null | head -1)"
  nsenter -t "$leader" -a /usr/local/lib/paramant-harness/paramant-harness-checks "$phase" || rc=$?
  if [ "$rc" != 0 ]; then
    nsenter -t "$leader" -a journalctl -q --no-pager -b -u 'paramant-*' > "$logdir/journal-$phase.log" 2>&1 || true
    log "nspawn $phase: failed checks; journal of the paramant units: $logdir/journal-$phase.log"
    tail -n 60 "$logdir/journal-$phase.log" >&2
  fi
  nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1 || kill "$nspawn"
  local deadline=$(( $(date +%s) + 60 ))
  while kill -0 "$nspawn" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then kill -9 "$nspawn"; break; fi
    sleep 0.2
  done
  wait "$nspawn" || true
  return "$rc"
}

rc=0
boot_and_check first-boot || rc=1
boot_and_check after-reboot || rc=1
exit $rc

#!/usr/bin/env bash
# Boots WORK/disk.img (the staged rootfs as an ext4 disk) with WORK/vmlinuz and WORK/initrd.img
# under qemu-system-x86_64 -accel tcg (no KVM here), without network, twice: the guest's
# paramant-harness.service runs the first-boot checks and reboots; qemu runs with -no-reboot,
# so that reboot (or a kernel panic) ends the process, and the same persistent disk is booted
# again for the after-reboot checks, which end in a power-off. The checks' output arrives on
# the guest's second serial port; check lines go to stdout.
#
# usage: boot-qemu.sh QEMU_ROOT WORK
set -euo pipefail
source "$(dirname "$0")/lib.sh"
qemu_root="$1"
work="$2"
# One boot under TCG takes 15–25 s here, the checks up to a minute more; a hang is cut off.
timeout_s="${PARAMANT_HARNESS_QEMU_TIMEOUT:-420}"

qemu=""
trap '[ -z "$qemu" ] || kill -9 "$qemu" 2>/dev/null || true' EXIT

boot() { # boot PHASE END_MARKER
  local phase="$1" end="$2" rc=0 deadline
  local console="$work/logs/qemu-console-$phase.log" serial="$work/logs/qemu-checks-$phase.log"
  : > "$serial"
  # TCG's "max" CPU double-faults the 6.12 kernel in qemu 7.2 (cmpxchg16b in the slab
  # allocator); the default qemu64 model boots it.
  LD_LIBRARY_PATH="$(cat "$qemu_root/ld-library-path")" \
    "$qemu_root/root/usr/bin/qemu-system-x86_64" \
      -L "$qemu_root/root/usr/share/qemu" -L "$qemu_root/root/usr/share/seabios" \
      -accel tcg -cpu qemu64,-cx16 -smp 2 -m 1536 -no-reboot \
      -nodefaults -no-user-config -display none -nic none \
      -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
      -append "root=/dev/vda rw console=ttyS0 loglevel=4 systemd.show_status=false panic=-1" \
      -drive "file=$work/disk.img,format=raw,if=virtio" \
      -device virtio-rng-pci \
      -serial "file:$console" -serial "file:$serial" \
    > "$work/logs/qemu-$phase.log" 2>&1 &
  qemu=$!
  deadline=$(( $(date +%s) + timeout_s ))
  while kill -0 "$qemu" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
  if kill -0 "$qemu" 2>/dev/null; then
    log "qemu $phase: still running after $timeout_s s; stopped"
    kill -9 "$qemu"
    rc=1
  fi
  wait "$qemu" || rc=1
  qemu=""
  cat "$serial"
  if ! grep -q "^CHECKS DONE $phase" "$serial"; then
    echo "CHECK FAIL $phase-completed — the $phase checks did not finish (console: $console)"
    rc=1
  fi
  grep -q "^CHECKS DONE $phase failed=0" "$serial" || rc=1
  if ! grep -q "^$end" "$serial"; then
    echo "CHECK FAIL $phase-$end — the guest did not get to $end"
    rc=1
  fi
  if [ "$rc" != 0 ]; then
    log "qemu $phase: failed; last console lines ($console):"
    tail -n 30 "$console" >&2
  fi
  return "$rc"
}

rc=0
boot first-boot "HARNESS REBOOTING" || rc=1
boot after-reboot "HARNESS POWEROFF" || rc=1
exit "$rc"

#!/usr/bin/env bash
# Builds the Debian systemd harness's base rootfs once and caches it: debootstrap bookworm
# minbase with systemd and udev, python3 (the checks), curl, the published Python SDK in a
# venv (the round trip), and a bookworm-backports cloud kernel with its initrd (6.12: landlock
# ABI 6, network rules included) for the qemu boot. Prints the path of the cached rootfs.
#
# usage: build-rootfs.sh   (as root; the cache key is this file's content)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PACKAGES="systemd-sysv,udev,kmod,python3,python3-venv,curl,ca-certificates"
KEY="$(sha256sum "$0" | cut -c1-12)"
ROOTFS="$PARAMANT_HARNESS_CACHE/rootfs-bookworm-$KEY"
if [ -f "$ROOTFS/.complete" ]; then
  echo "$ROOTFS"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "building the rootfs needs root (debootstrap)"
need_host_packages debootstrap:debootstrap systemd-nspawn:systemd-container

mkdir -p "$PARAMANT_HARNESS_CACHE"
tmp="$ROOTFS.tmp"
rm -rf "$tmp" "$ROOTFS"
log "debootstrap bookworm (minbase + $PACKAGES) into $tmp"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$tmp" "$DEBIAN_MIRROR" > "$tmp.log" 2>&1 \
  || { tail -30 "$tmp.log" >&2; die "debootstrap failed (log: $tmp.log)"; }

# Inside the new root (nspawn without boot provides /proc, /dev and the host's network).
in_root() { systemd-nspawn --quiet --register=no --keep-unit -D "$tmp" --setenv=DEBIAN_FRONTEND=noninteractive "$@"; }
log "installing the bookworm-backports cloud kernel (qemu boot)"
echo "deb $DEBIAN_MIRROR bookworm-backports main" > "$tmp/etc/apt/sources.list.d/backports.list"
{
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends -t bookworm-backports linux-image-cloud-amd64
  in_root apt-get clean
} >> "$tmp.log" 2>&1 || { tail -30 "$tmp.log" >&2; die "kernel install failed (log: $tmp.log)"; }
rm -rf "$tmp"/var/lib/apt/lists/*

# The published Python SDK, unmodified, for the round trip through the booted system. pip
# trusts the host's CA bundle (the network may intercept TLS); the venv keeps no trace of it.
log "installing the published Python SDK (paramant-sdk 3.0.0) into /opt/paramant-sdk"
ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
in_root --bind-ro="$ca:/run/host-ca.crt" --setenv=PIP_CERT=/run/host-ca.crt bash -c \
  'python3 -m venv /opt/paramant-sdk && /opt/paramant-sdk/bin/pip install -q --disable-pip-version-check --no-cache-dir paramant-sdk==3.0.0 mnemonic==0.21' \
  >> "$tmp.log" 2>&1 || { tail -30 "$tmp.log" >&2; die "SDK install failed (log: $tmp.log)"; }
ls "$tmp"/boot/vmlinuz-* "$tmp"/boot/initrd.img-* >/dev/null || die "no kernel or initrd in $tmp/boot"

# Test-image settings: no login prompts (a serial getty's hang-up kills checks writing to the
# serial line), a fixed hostname, a machine id made at first boot.
for unit in getty.target console-getty.service serial-getty@ttyS0.service serial-getty@ttyS1.service; do
  ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
done
echo paramant-harness > "$tmp/etc/hostname"
: > "$tmp/etc/machine-id"
rm -f "$tmp.log"
touch "$tmp/.complete"
mv "$tmp" "$ROOTFS"
# Older cached roots are of no use once the key changed.
find "$PARAMANT_HARNESS_CACHE" -maxdepth 1 -name 'rootfs-bookworm-*' ! -path "$ROOTFS" -exec rm -rf {} +
log "rootfs ready: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
echo "$ROOTFS"

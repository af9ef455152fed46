#!/usr/bin/env bash
# Fetches qemu-system-x86 from Debian's packages into a private folder of the harness cache
# (apt-get download + dpkg -x): installing it would fight the machine's newer qemu-utils.
# Only packages not already installed on the host are extracted; qemu runs with
# LD_LIBRARY_PATH and -L pointing there. Prints the folder.
#
# usage: fetch-qemu.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

QEMU_ROOT="$PARAMANT_HARNESS_CACHE/qemu-$(sha256sum "$0" | cut -c1-12)"
if [ -f "$QEMU_ROOT/.complete" ]; then
  echo "$QEMU_ROOT"
  exit 0
fi
mkdir -p "$PARAMANT_HARNESS_CACHE"
tmp="$QEMU_ROOT.tmp"
rm -rf "$tmp" "$QEMU_ROOT"
mkdir -p "$tmp/debs" "$tmp/root"

apt-cache show qemu-system-x86 >/dev/null 2>&1 || apt-get update -qq
# The dependency closure (first alternative of each dependency), stopping at packages the host
# already has in any version; one apt-cache call per level of the dependency graph.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
first_alternatives() {
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
    --no-enhances "$@" | awk '
      /^  \|(Pre)?Depends:/ { if (!alt) print $2; alt = 1; next }
      /^  (Pre)?Depends:/ { if (!alt) print $2; alt = 0 }' | grep -v '^<' | sed 's/:amd64$//' | sort -u
}
wanted=()
declare -A seen=()
level=(qemu-system-x86)
while [ ${#level[@]} -gt 0 ]; do
  next=()
  for pkg in "${level[@]}"; do
    [ -z "${seen[$pkg]:-}" ] || continue
    seen[$pkg]=1
    installed "$pkg" || next+=("$pkg")
  done
  [ ${#next[@]} -gt 0 ] || break
  wanted+=("${next[@]}")
  mapfile -t level < <(first_alternatives "${next[@]}")
done
log "downloading ${#wanted[@]} packages for qemu-system-x86: ${wanted[*]}"
(cd "$tmp/debs" && apt-get download -qq "${wanted[@]}" >/dev/null 2>&1) || die "apt-get download failed"
for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/root"; done
rm -rf "$tmp/debs"

libpath="$(find "$tmp/root" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')"
missing="$(LD_LIBRARY_PATH="$libpath" ldd "$tmp/root/usr/bin/qemu-system-x86_64" | grep 'not found' || true)"
[ -z "$missing" ] || die "qemu-system-x86_64 still lacks libraries: $missing"
printf '%s\n' "${libpath%:}" | sed "s|$tmp|$QEMU_ROOT|g" > "$tmp/ld-library-path"
touch "$tmp/.complete"
mv "$tmp" "$QEMU_ROOT"
find "$PARAMANT_HARNESS_CACHE" -maxdepth 1 -name 'qemu-*' ! -path "$QEMU_ROOT" -exec rm -rf {} +
log "qemu ready: $QEMU_ROOT"
echo "$QEMU_ROOT"

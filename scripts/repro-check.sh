#!/usr/bin/env bash
# Reproducible release builds, checked here: builds the release binaries twice, from two copies
# of the checkout in two different directories, each with its own CARGO_TARGET_DIR, and
# compares their SHA-256; then checks that no absolute build path (checkouts, target dirs,
# cargo home, home directory) is left in any binary.
#
# What makes the bytes independent of where the build ran (the same flags the flake's packages
# and `scripts/release.sh` use — see reproducible_env below):
#   --locked                 the dependency graph is Cargo.lock, nothing else
#   SOURCE_DATE_EPOCH        the commit time (nothing in the tree embeds a clock, but C build
#                            scripts and tools that do honour it)
#   --remap-path-prefix      checkout → /build/paramant, target dir → /build/target,
#                            cargo home → /cargo (registry sources: panic locations, debug lines)
#   -ffile-prefix-map        the same for C sources built by build scripts (aws-lc's __FILE__)
#   [profile.release] debug = "line-tables-only" keeps line tables (backtraces), whose paths
#                            are remapped like the rest.
#
# usage: scripts/repro-check.sh [--bins "paramant paramant-ctlog"] [--keep] [--work DIR]
#   default: the `paramant` binary only; it links every service (ctlog, relay, and whatever
#   `paramant <service> run` reaches), so it covers all their code at the cost of one build each.
#   --work DIR  build in DIR and keep it; a second run with the same DIR only rebuilds what changed
# Cost: two cold release builds (measured in README "Reproducible and signed releases").
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bins="paramant"
keep=no
work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bins) bins="$2"; shift 2 ;;
    --keep) keep=yes; shift ;;
    --work) work="$2"; keep=yes; shift 2 ;;
    *) echo "repro-check: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
[ -n "$work" ] || work="$(mktemp -d "${TMPDIR:-/tmp}/paramant-repro.XXXXXX")"
[ "$keep" = yes ] || trap 'rm -rf "$work"' EXIT
epoch="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 1700000000)"

# The files a release is built from: tracked and new (not ignored) files of the working tree.
copy_checkout() {
  rm -rf "$1"
  mkdir -p "$1"
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$1"
}

# Prints the environment assignments for a reproducible build of checkout $1 into target $2.
reproducible_env() {
  local src="$1" target="$2"
  local remap="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$src=/build/paramant --remap-path-prefix=$target=/build/target"
  local cmap="-ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$src=/build/paramant -ffile-prefix-map=$target=/build/target"
  printf '%s\n' "SOURCE_DATE_EPOCH=$epoch" "CARGO_TARGET_DIR=$target" "RUSTFLAGS=$remap" \
    "CFLAGS=$cmap" "CXXFLAGS=$cmap" "CARGO_INCREMENTAL=0"
}

build() {
  local src="$1" target="$2" args=() bin
  for bin in $bins; do args+=(--bin "$bin"); done
  local start=$EPOCHSECONDS
  mapfile -t envs < <(reproducible_env "$src" "$target")
  (cd "$src" && env "${envs[@]}" cargo build --release --locked --quiet "${args[@]}")
  printf 'repro-check: built %s in %d s (load %s)\n' "$src" "$((EPOCHSECONDS - start))" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
}

# Two different depths and names, so that no path length or name coincidence can hide a leak.
a="$work/a/paramant-src"
b="$work/second-build/deeper/checkout"
copy_checkout "$a"
copy_checkout "$b"
build "$a" "$work/a-target"
build "$b" "$work/b-target"

fail=0
for bin in $bins; do
  ha="$(sha256sum < "$work/a-target/release/$bin" | cut -d' ' -f1)"
  hb="$(sha256sum < "$work/b-target/release/$bin" | cut -d' ' -f1)"
  if [ "$ha" = "$hb" ]; then
    echo "repro-check: $bin identical in both builds, sha256 $ha"
  else
    echo "repro-check: $bin DIFFERS: $ha vs $hb (rerun with --keep and diffoscope the two)" >&2
    fail=1
  fi
  for f in "$work/a-target/release/$bin" "$work/b-target/release/$bin"; do
    leaks="$(strings -a "$f" | grep -cF -e "$work" -e "$cargo_home" -e "$HOME/" -e "$repo" || true)"
    if [ "$leaks" != 0 ]; then
      echo "repro-check: $f contains $leaks strings with an absolute build path, e.g.:" >&2
      strings -a "$f" | grep -F -e "$work" -e "$cargo_home" -e "$HOME/" -e "$repo" | head -5 >&2
      fail=1
    fi
  done
done
[ $fail = 0 ] && echo "repro-check: ok ($bins: bit-for-bit identical, no absolute build path)"
exit $fail

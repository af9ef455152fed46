#!/usr/bin/env bash
# Measures the relay on loopback (README "Performance"): builds the release binaries, then
# paramant-loadgen starts a throwaway log + relay and reports, with N concurrent clients,
# 1 KiB and 5 MiB uploads/s with p50/p99, upload+download cycles/s, and the relay's RSS with
# 1 GiB of blobs stored, each next to its target. Everything runs twice (the machine may be
# shared); extra arguments go to paramant-loadgen (see `paramant-loadgen --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --bins -p paramant -p loadgen
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || commit="$commit + local changes"
echo "## Relay benchmark ($commit)"
echo
echo "\`uptime\` before: $(uptime)"
echo
PARAMANT_BIN="$target/release/paramant" "$target/release/paramant-loadgen" --runs 2 "$@"
echo "\`uptime\` after: $(uptime)"

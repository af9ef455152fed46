#!/usr/bin/env bash
# Runs every test of paramant-rs: lints, the Rust test suites (unit, published vectors,
# property tests, HTTP round trips against the real binaries, crash/restart), and the
# published Python SDK (paramant-sdk 3.0.0, unmodified) against `paramant up`, the units
# rendered from Nix and scored, and the Debian systemd harness (real systemd, real kernel).
# This is the command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

# Everything after this point runs release binaries only. CI (.ci/run) sets this to give the
# debug build's disk (10-30 GB) back before the release build, the harness image and repro-check.
if [ -n "${PARAMANT_FREE_DEBUG_TARGET:-}" ]; then
  echo "== freeing target/debug (PARAMANT_FREE_DEBUG_TARGET set)"
  rm -rf target/debug
  df -h . | sed 's/^/   /'
fi

echo "== release binaries"
cargo build --release --locked --bins

echo "== published Python SDK against paramant up"
venv=.venv-sdk
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/sdk/requirements.txt
PARAMANT_BIN="$PWD/target/release/paramant" "$venv/bin/python" -m pytest -q tests/sdk

echo "== the web panel end to end in headless Chromium against paramant up"
venv=.venv-browser
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/browser/requirements.txt
PARAMANT_BIN="$PWD/target/release/paramant" "$venv/bin/python" -m pytest -q tests/browser

echo "== OpenAPI document against the running relay (schemathesis), and no secret in the services' logs"
venv=.venv-api
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/api/requirements.txt
PARAMANT_BIN="$PWD/target/release/paramant" "$venv/bin/python" -m pytest -q tests/api

echo "== units: rendered from nixos-modules/lib with nix-instantiate, scored by systemd-analyze"
bash scripts/render-units.sh --out target/rendered-units
bash scripts/render-units.sh --services ctlog,relay,admin,license --out target/rendered-units-all

echo "== the Debian systemd harness (nspawn and qemu TCG boots of the rendered units)"
df -h . "${TMPDIR:-/tmp}" | sed 's/^/   /'
bash harness/debian-systemd/run.sh --no-build

echo "== Nix side: every .nix parses, deadnix, modules under lib.evalModules = harness units, flake.lock"
bash scripts/nix-check.sh

echo "== signed releases: paramant release keygen/sign/verify, checked by Python cryptography"
bash scripts/release-check.sh target/release/paramant .venv-sdk/bin/python

echo "== reproducible release build: paramant built twice in two directories, compared"
bash scripts/repro-check.sh

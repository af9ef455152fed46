#!/usr/bin/env bash
# Runs every test of paramant-rs: lints, the Rust test suites (unit, published vectors,
# property tests, HTTP round trips against the real binaries, crash/restart).
# This is the command README.md names and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

# The paramant binaries, built from this checkout with nixpkgs' Rust toolchain and the exact
# dependency graph in Cargo.lock (vendored by cargoLock.lockFile; no network in the build).
# `cargoPackages` narrows the build to some workspace crates (one service per package).
{ lib, rustPlatform, pname ? "paramant", cargoPackages ? [ ] }:
let
  workspace = (lib.importTOML ../Cargo.toml).workspace.package;
in
rustPlatform.buildRustPackage {
  inherit pname;
  inherit (workspace) version;

  # Only what the build reads, so that a README edit does not rebuild the binaries.
  src = lib.fileset.toSource {
    root = ../.;
    # flake.lock: `paramant release` tests sign it like a release does.
    fileset = lib.fileset.unions [ ../Cargo.toml ../Cargo.lock ../flake.lock ../crates ../rustfmt.toml ../clippy.toml ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [ "--locked" ] ++ (if cargoPackages == [ ] then [ "--workspace" ] else map (p: "--package=${p}") cargoPackages);
  # The test suites run as their own check (nix/checks.nix: cargo-test), not in every build.
  doCheck = false;

  meta = {
    description = "paramant: post-quantum burn-after-read relay with a signed Merkle transparency log";
    homepage = "https://paramant.app";
    license = lib.licenses.bsl11;
    mainProgram = "paramant";
    platforms = lib.platforms.linux;
  };
}

# checks.<system>: the Rust test suites, clippy with warnings as errors, rustfmt, and every NixOS
# VM test in ../vm-tests (collected by ../vm-tests/default.nix, one scenario per file).
{ pkgs, self }:
let
  paramant = self.packages.${pkgs.stdenv.hostPlatform.system}.paramant;
  # The build's vendored sources and cargo config, with another command in place of the build.
  cargoCheck = name: command: paramant.overrideAttrs (old: {
    pname = "paramant-${name}";
    # node runs the /ct/ page's JavaScript against the SHA3 vectors in the ctlog tests; openssl
    # checks the release signatures' cosign format in the release tests.
    nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy pkgs.rustfmt pkgs.nodejs pkgs.openssl ];
    buildPhase = ''
      runHook preBuild
      ${command}
      runHook postBuild
    '';
    doCheck = false;
    installPhase = "touch $out";
  });
  vmTests = import ../vm-tests {
    inherit (pkgs) lib;
    runNixOSTest = pkgs.testers.runNixOSTest;
    scenarioArgs = { inherit self pkgs; inherit (pkgs) lib; };
  };
in
{
  # The workspace's tests against the real binaries (loopback only, which the sandbox has).
  cargo-test = cargoCheck "cargo-test" "cargo test --workspace --locked --offline";
  clippy = cargoCheck "clippy" "cargo clippy --workspace --all-targets --locked --offline -- -D warnings";
  fmt = cargoCheck "fmt" "cargo fmt --all --check";
} // pkgs.lib.optionalAttrs pkgs.stdenv.hostPlatform.isx86_64 vmTests

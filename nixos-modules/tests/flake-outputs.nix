# TEST ONLY: evaluates flake.nix's outputs against a fake nixpkgs (nixpkgs' real lib, every
# package a placeholder derivation, runNixOSTest returning a placeholder named after the test)
# and returns their shape: which packages, checks, modules and shells exist per system.
# scripts/nix-check.sh compares it with what README promises.
{ lib }:
let
  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/eval-test-${name}";
    overrideAttrs = f: fakeDrv (f { nativeBuildInputs = [ ]; }).pname;
  };
  pkgsFor = system: {
    inherit lib;
    stdenv.hostPlatform = { inherit system; isx86_64 = system == "x86_64-linux"; };
    callPackage = _fn: args: fakeDrv (args.pname or "paramant");
    testers.runNixOSTest = test: fakeDrv "vm-test-${test.name}";
    mkShell = _: fakeDrv "shell";
    writeShellScript = name: _: fakeDrv name;
    writeText = name: _: fakeDrv name;
    runCommand = name: _: _: fakeDrv name;
    paramant = fakeDrv "pkgs-paramant-unused";
  };
  nixpkgs = {
    lib = lib // {
      nixosSystem = args: { inherit args; config.system.build.finalImage = fakeDrv "paramantOS-image"; };
    };
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor;
  };
  self = (import ../../flake.nix).outputs { inherit self nixpkgs; };
  names = lib.mapAttrs (_: lib.attrNames);
  # The flake's modules, several at once (each brings the package default): the flake's own
  # package is the one the units run.
  relayWithAdmin = (lib.evalModules {
    modules = [
      ./nixos-options-for-tests.nix
      self.nixosModules.relay
      self.nixosModules.admin
      self.nixosModules.license
      {
        _module.args.pkgs = pkgsFor "x86_64-linux";
        services.paramant = { ctlog.health = { }; relays.health = { }; admin.enable = true; };
      }
    ];
  }).config;
in
{
  packages = names self.packages;
  checks = names self.checks;
  checkNames = lib.mapAttrs (_: lib.mapAttrs (_: d: d.name)) self.checks;
  devShells = names self.devShells;
  nixosModules = lib.attrNames self.nixosModules;
  nixosConfigurations = lib.attrNames self.nixosConfigurations;
  image = self.packages.x86_64-linux.image.name;
  moduleExecStart = relayWithAdmin.systemd.services."paramant-relay@".serviceConfig.ExecStart;
}

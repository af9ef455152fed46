# paramant-rs as a Nix flake: small on purpose, every output is built in its own folder.
#   packages.<system>   paramant (CLI + every service), paramant-ctlog, paramant-relay, image  (nix/)
#   nixosModules        ctlog, relay, admin, license, paramantOS                              (nixos-modules/)
#   nixosConfigurations.paramantOS   the appliance                                            (image/)
#   checks.<system>     cargo tests, clippy, fmt, every vm-tests/*.nix                         (nix/checks.nix)
#   devShells.<system>.default                                                                (nix/shell.nix)
# What CI checks without nixpkgs, and what needs a connected Nix machine: README "The Nix side".
{
  description = "paramant-rs: post-quantum burn-after-read relay with a signed transparency log, and paramantOS";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      modules = import ./nixos-modules;
      # The flake's modules run the flake's own package unless the user sets another. Keyed, so
      # that importing several of the modules defines the default once.
      flakePackage = { lib, pkgs, ... }: {
        key = "paramant-flake/package";
        services.paramant.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.paramant;
      };
      withPackage = module: { imports = [ module flakePackage ]; };
    in
    {
      packages = forEachSystem (pkgs: import ./nix/packages.nix { inherit pkgs self; });

      nixosModules = builtins.mapAttrs (_: withPackage) modules // {
        default = self.nixosModules.paramantOS;
      };

      nixosConfigurations.paramantOS = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [ self.nixosModules.paramantOS ./image ];
      };

      checks = forEachSystem (pkgs: import ./nix/checks.nix { inherit pkgs self; });

      devShells = forEachSystem (pkgs: { default = import ./nix/shell.nix { inherit pkgs; }; });
    };
}

# packages.<system>: the whole workspace (`paramant`, with every service binary), one package
# per service, and on x86_64-linux the paramantOS disk image.
{ pkgs, self }:
let
  paramant = pkgs.callPackage ./package.nix { };
in
{
  inherit paramant;
  default = paramant;
  paramant-ctlog = pkgs.callPackage ./package.nix { pname = "paramant-ctlog"; cargoPackages = [ "ctlog" ]; };
  paramant-relay = pkgs.callPackage ./package.nix { pname = "paramant-relay"; cargoPackages = [ "relay" ]; };
} // pkgs.lib.optionalAttrs (pkgs.stdenv.hostPlatform.system == "x86_64-linux") {
  # The appliance: a raw GPT disk image (ESP with the UKI, dm-verity protected store).
  image = self.nixosConfigurations.paramantOS.config.system.build.finalImage;
}

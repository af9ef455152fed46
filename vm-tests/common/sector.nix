# A VM node for the scenarios: one sector's log and relay from the flake's own modules, with
# the tools the test scripts use (curl, jq, the published SDK as `paramant-sdk-python`).
{ self, pkgs, sector ? "health" }:
{
  imports = [ self.nixosModules.relay ];
  services.paramant.ctlog.${sector} = { };
  services.paramant.relays.${sector}.openFirewall = true;
  environment.systemPackages = [
    pkgs.curl
    pkgs.jq
    (pkgs.writeShellScriptBin "paramant-sdk-python" ''exec ${import ../../nix/paramant-sdk.nix { inherit pkgs; }}/bin/python3 "$@"'')
  ];
  virtualisation.memorySize = 1536;
}

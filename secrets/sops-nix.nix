# Example (needs the sops-nix NixOS module): the license token and the health log's key from one
# sops file. The key is binary, so it lives in its own file with format = "binary".
{ config, ... }:
{
  sops.secrets = {
    paramant-license = { sopsFile = ./paramant.yaml; key = "license"; };
    paramant-ctlog-health-key = { sopsFile = ./paramant-ctlog-health.key; format = "binary"; };
  };
  services.paramant = {
    license = {
      enable = true;
      licenseFile = config.sops.secrets.paramant-license.path;
    };
    ctlog.health.signingKeyFile = config.sops.secrets.paramant-ctlog-health-key.path;
    relays.health.openFirewall = true;
  };
}

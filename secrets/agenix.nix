# Example (needs the agenix NixOS module): the health log's key and the relay's TLS key as age
# files in the configuration repository. Make the key file with
#   head -c 32 /dev/urandom | age -r <host ssh key> -o paramant-ctlog-health.key.age
{ config, ... }:
{
  age.secrets = {
    paramant-ctlog-health-key.file = ./paramant-ctlog-health.key.age;
    paramant-relay-health-tls-key.file = ./paramant-relay-health-tls.key.age;
  };
  services.paramant = {
    # agenix decrypts to /run/agenix/<name> (root only); systemd hands the units a copy.
    ctlog.health.signingKeyFile = config.age.secrets.paramant-ctlog-health-key.path;
    relays.health = {
      openFirewall = true;
      tls = {
        certificateFile = "/var/lib/paramant-tls/health.crt";
        keyFile = config.age.secrets.paramant-relay-health-tls-key.path;
      };
    };
  };
}

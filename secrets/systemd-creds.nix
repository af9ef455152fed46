# Example: the health log's signing key encrypted with systemd-creds (TPM2 and/or the host key
# in /var/lib/systemd/credential.secret), decrypted by systemd only into the unit's private
# credentials directory. Once, on the machine (the seed is 32 random bytes):
#
#   head -c 32 /dev/urandom | systemd-creds encrypt --name=log-key - \
#     /etc/credstore.encrypted/paramant-ctlog-health.log-key
#
# `--name` must be the credential id the unit uses (`log-key`).
{
  services.paramant = {
    logKeyCredential = "encrypted";
    ctlog.health = { };
    relays.health.openFirewall = true;
  };
}

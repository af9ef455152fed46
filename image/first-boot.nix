# First boot of the appliance: nothing secret is in the image. On the first start
#   - paramant-secrets makes the shared service tokens into /etc/credstore (on the state
#     partition, see ./default.nix);
#   - each log generates its ML-DSA-65 key in its own state directory (crates/crypto);
#   - paramant-tls (below) makes a self-signed TLS certificate for the relays, valid for the
#     host name, which the operator can replace by a real one (same paths; restart the relays).
{ config, lib, pkgs, ... }:
let
  tlsDir = "/var/lib/paramant-tls";
  sectors = lib.attrNames config.services.paramant.relays;
in
{
  systemd.services.paramant-tls = {
    description = "paramant relays' TLS certificate (first boot)";
    wantedBy = [ "paramant.target" ];
    before = map (s: "paramant-relay@${s}.service") sectors;
    unitConfig.ConditionPathExists = "!${tlsDir}/key.pem";
    path = [ pkgs.openssl ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      UMask = "0077";
      StateDirectory = "paramant-tls";
      StateDirectoryMode = "0700";
      PrivateNetwork = true;
      ProtectSystem = "strict";
      ProtectHome = true;
      NoNewPrivileges = true;
    };
    # P-256 key, 825 days (what clients accept for a self-signed leaf), SAN = host name.
    script = ''
      host="$(cat /proc/sys/kernel/hostname)"
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -subj "/CN=$host" -addext "subjectAltName=DNS:$host,DNS:localhost" \
        -keyout ${tlsDir}/key.pem.tmp -out ${tlsDir}/cert.pem
      mv ${tlsDir}/key.pem.tmp ${tlsDir}/key.pem
      openssl x509 -in ${tlsDir}/cert.pem -noout -fingerprint -sha256
    '';
  };

  # Every relay serves HTTPS with it (handed over by LoadCredential=, so the relays' dynamic
  # users never see the file itself).
  services.paramant.relays = lib.genAttrs config.paramantOS.sectors (_: {
    tls = { certificateFile = "${tlsDir}/cert.pem"; keyFile = "${tlsDir}/key.pem"; };
  });
}

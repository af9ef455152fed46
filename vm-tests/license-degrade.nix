# License degrade (ADR R013, crates/license-service): the relay's grant comes from the signed
# capability set of the last good check-in, which keeps granting through the 7-day grace when the
# license server is unreachable; after it the relay falls back to what the offline `plk_` token
# alone grants. Shown by the relay's /health (`license.license_source`, `license.max_users`).
#
# The reference license server (`paramant-license server run`) runs inside the VM over TLS with
# a CA made at build time; tokens and capability sets are signed with the published TEST seeds
# of crates/license/fixtures (their public keys: ./common/license-test-keys.nix), trusted here
# only. The token (cap 6) is written to the credential store the way an operator would; the
# server grants 8, so the two sources are told apart.
{ self, pkgs, ... }:
let
  keys = import ./common/license-test-keys.nix;
  fixtures = "${self}/crates/license/fixtures";
  # TEST ONLY: a CA and the license server's certificate for license.test, and the server's
  # ML-DSA-65 seed as the 32 raw bytes its key file holds.
  testFiles = pkgs.runCommand "license-degrade-test-files" { nativeBuildInputs = [ pkgs.openssl pkgs.python3 ]; } ''
    mkdir -p $out
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 \
      -subj /CN=license-test-ca -keyout ca.key -out $out/ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=license.test \
      -keyout $out/server.key -out server.csr
    printf 'subjectAltName=DNS:license.test\n' > ext
    openssl x509 -req -in server.csr -CA $out/ca.pem -CAkey ca.key -CAcreateserial -days 36500 \
      -extfile ext -out $out/server.pem
    python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(open(sys.argv[1]).read().strip()))' \
      ${fixtures}/test-mldsa65-capability-signing.seed.hex $out/capability-signing.seed
  '';
  trust = {
    trusted_ed25519_keys = [ keys.ed25519 ];
    ml_dsa_keys = [{ key = keys.mlDsa65; }];
  };
in
{
  name = "license-degrade";
  nodes.machine = { config, ... }: {
    imports = [ (import ./common/sector.nix { inherit self pkgs; }) self.nixosModules.license ];
    services.paramant.license = {
      enable = true;
      serverUrl = "https://license.test:8443/v1/license/check";
      settings = { ca_file = "${testFiles}/ca.pem"; license = trust; };
    };
    services.paramant.relays.health.settings.license = trust;
    networking.hosts."127.0.0.1" = [ "license.test" ];
    environment.systemPackages = [ config.services.paramant.package ];
    environment.etc."license-test/server.toml".text = ''
      listen = "127.0.0.1:8443"
      cert_file = "${testFiles}/server.pem"
      key_file = "${testFiles}/server.key"
      signing_key_file = "${testFiles}/capability-signing.seed"
      db_file = "/var/lib/license-test/db.json"
    '';
    # The clock is moved by the test.
    services.timesyncd.enable = false;
  };
  testScript = builtins.readFile ./common/helpers.py + ''
    def license_health():
        return get_json(machine, f"http://127.0.0.1:{HEALTH['relay']}/health")["license"]

    def wait_for_grant(source, max_users):
        machine.wait_until_succeeds(
            f"curl -fsS http://127.0.0.1:{HEALTH['relay']}/health"
            f" | jq -e '.license.license_source == \"{source}\" and .license.max_users == {max_users}'",
            timeout=120)

    start_all()
    wait_for_sector(machine)
    # No token yet (paramant-secrets left an empty one): Community Edition.
    assert license_health()["license_source"] == "none", license_health()

    token = machine.succeed(
        "paramant-license issue --key ${fixtures}/test-ed25519-license-signing.seed.hex"
        " --max-keys 6 --expires 2099-01-01 --issued-to 'NixOS VM test'").strip()
    assert token.startswith("plk_"), token
    machine.succeed(f"(umask 077; printf %s '{token}' > /etc/credstore/paramant.license-token)")
    machine.succeed("mkdir -p /var/lib/license-test")
    machine.succeed(f"paramant-license server add --db /var/lib/license-test/db.json --token '{token}' --tier pro --max-users 8")
    machine.succeed("systemd-run --unit=license-test-server paramant-license server run --config /etc/license-test/server.toml")
    machine.wait_for_open_port(8443)

    # The relay reads the token at start; the check-in brings the signed set (cap 8).
    machine.succeed("systemctl restart paramant-relay@health.service")
    wait_for_sector(machine)
    wait_for_grant("offline_token", 6)
    machine.succeed("systemctl start paramant-license.service")
    wait_for_grant("capability_set", 8)

    # The server goes away. Within the 7-day grace the cached set still grants.
    machine.succeed("systemctl stop license-test-server.service")
    machine.succeed("date -s '+6 days'")
    machine.execute("systemctl start paramant-license.service")
    wait_for_grant("capability_set", 8)
    assert license_health()["edition"] == "licensed", license_health()

    # Past the grace: the offline token alone decides (cap 6), still licensed, not the set's 8.
    machine.succeed("date -s '+2 days'")
    machine.execute("systemctl start paramant-license.service")
    wait_for_grant("offline_token", 6)
    assert license_health()["edition"] == "licensed", license_health()
  '';
}

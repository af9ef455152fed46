# Admin TOTP login through the admin panel (paramant-admin.service): an account is created, its
# TOTP secret set up, and a login succeeds with the current code and fails with a wrong one and
# with the same code replayed.
#
# PROVISIONAL — written on the `nix` branch before the admin service existed (issue 10). The
# endpoints and fields below follow the API reference's `/api/user/*` names
# (reference/admin-and-license.md §1); ALIGN AT MERGE with crates/admin's routes.
{ self, pkgs, ... }:
{
  name = "admin-totp-login";
  nodes.machine = { ... }: {
    imports = [ (import ./common/sector.nix { inherit self pkgs; }) self.nixosModules.admin ];
    services.paramant.admin.enable = true;
  };
  testScript = builtins.readFile ./common/helpers.py + ''
    import base64, hashlib, hmac, struct, time

    def totp(secret_b32, step_offset=0):
        key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
        counter = int(time.time()) // 30 + step_offset
        digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
        o = digest[-1] & 0x0F
        return "%06d" % ((struct.unpack(">I", digest[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)

    start_all()
    wait_for_sector(machine)
    machine.wait_for_unit("paramant-admin.service")
    machine.wait_for_open_port(4200)
    admin = "http://127.0.0.1:4200"
    signup = post_json(machine, f"{admin}/api/user/signup", {"email": "vm@example.test"})
    setup = post_json(machine, f"{admin}/api/user/setup-totp", {"user_id": signup["user_id"]})
    code = totp(setup["secret"])
    machine.fail(f"curl -fsS -X POST -H 'content-type: application/json' -d '{{\"email\":\"vm@example.test\",\"totp\":\"000000\"}}' {admin}/api/user/login")
    login = post_json(machine, f"{admin}/api/user/login", {"email": "vm@example.test", "totp": code})
    assert login.get("ok") is True, login
    # The same code twice is a replay.
    machine.fail(f"curl -fsS -X POST -H 'content-type: application/json' -d '{{\"email\":\"vm@example.test\",\"totp\":\"{code}\"}}' {admin}/api/user/login")
  '';
}

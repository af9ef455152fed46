# Accounts with TOTP through paramant-admin.service (crates/admin/src/user_api.rs): sign up, take
# the setup link from the mail outbox (no SMTP configured: state_dir/outbox/), set up and confirm
# TOTP (which mints the user's API key on the relay over its internal API), then log in: a wrong
# code is refused, the next step's code works, and the same code replayed is refused.
{ self, pkgs, ... }:
{
  name = "admin-totp-login";
  nodes.machine = { ... }: {
    imports = [ (import ./common/sector.nix { inherit self pkgs; }) self.nixosModules.admin ];
    services.paramant.admin.enable = true;
  };
  testScript = builtins.readFile ./common/helpers.py + ''
    import base64, hashlib, hmac, re, struct

    ADMIN = "http://127.0.0.1:8400"
    EMAIL = "vm@example.test"

    def totp(secret_b32, step):
        key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
        digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
        o = digest[-1] & 0x0F
        return "%06d" % ((struct.unpack(">I", digest[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)

    def vm_step():
        """The TOTP step of the guest's clock (the one the panel checks codes against)."""
        return int(machine.succeed("date +%s").strip()) // 30

    def call(path, body):
        """POST a JSON body; (HTTP status, JSON answer), 4xx included."""
        payload = json.dumps(body).replace("'", "'\\'''")
        out = machine.succeed(
            f"curl -sS -o /tmp/answer -w '%{{http_code}}' -X POST -H 'content-type: application/json' "
            f"-d '{payload}' {ADMIN}{path}; echo; cat /tmp/answer")
        status, answer = out.split("\n", 1)
        return int(status), json.loads(answer)

    start_all()
    wait_for_sector(machine)
    machine.wait_for_unit("paramant-admin.service")
    machine.wait_for_open_port(8400)

    assert call("/api/user/signup", {"email": EMAIL}) == (200, {"ok": True})
    mail = machine.succeed(f"grep -l 'To: {EMAIL}' /var/lib/paramant-admin/outbox/* | xargs cat")
    token = re.search(r"/auth/setup/([A-Za-z0-9_]+)", mail).group(1)

    status, setup = call(f"/api/user/auth/setup/{token}", {})
    assert status == 200 and len(setup["backup_codes"]) == 10, setup
    step = vm_step()
    status, confirmed = call(f"/api/user/auth/setup/{token}/confirm", {"totp_code": totp(setup["secret"], step)})
    assert status == 200 and confirmed["api_key"].startswith("pgp_"), confirmed
    # The key was made on the health relay through its internal API.
    check = get_json(machine, f"http://127.0.0.1:{HEALTH['relay']}/v2/check-key", [f"X-Api-Key: {confirmed['api_key']}"])
    assert check.get("valid") is True, check

    wrong = "%06d" % ((int(totp(setup["secret"], step)) + 1) % 1000000)
    status, answer = call("/api/user/auth/login", {"email": EMAIL, "totp_code": wrong})
    assert (status, answer.get("error")) == (401, "invalid_totp_code"), (status, answer)
    # The confirm used this step's code: log in with the next step's (waits for the guest clock).
    machine.wait_until_succeeds(f"test $(( $(date +%s) / 30 )) -gt {step}", timeout=60)
    code = totp(setup["secret"], vm_step())
    status, answer = call("/api/user/auth/login", {"email": EMAIL, "totp_code": code})
    assert (status, answer) == (200, {"ok": True}), (status, answer)
    # The same code again is a replay.
    status, answer = call("/api/user/auth/login", {"email": EMAIL, "totp_code": code})
    assert (status, answer.get("error")) == (401, "invalid_totp_code"), (status, answer)
  '';
}

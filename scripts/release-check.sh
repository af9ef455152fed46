#!/usr/bin/env bash
# Signed releases as a release manager and an operator use them, with the real binary: keygen,
# sign a release of the built binaries, `paramant release verify` (exit 0), then the same
# signatures checked by an independent implementation — Python `cryptography` (ECDSA P-256 in
# cosign's blob format, and ML-DSA-65) — and `paramant release verify` refusing a tampered
# manifest, a tampered artifact and a missing signature (exit 1 each).
#
# usage: scripts/release-check.sh [PARAMANT_BIN] [PYTHON]
#   PARAMANT_BIN  default target/release/paramant
#   PYTHON        a python3 with `cryptography` >= 45 (ML-DSA); default .venv-sdk/bin/python,
#                 which the SDK tests install (paramant-sdk depends on cryptography)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$repo/target/release/paramant}"
python="${2:-$repo/.venv-sdk/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "release-check: FAIL: $*" >&2; exit 1; }

"$bin" release keygen --out "$work/keys" >/dev/null
mkdir "$work/artifacts"
cp "$bin" "$work/artifacts/paramant"
printf 'paramantOS image stand-in\n' > "$work/artifacts/paramantOS_0.1.0.raw"
"$bin" release sign --keys "$work/keys" --version 0.1.0 \
  --source-commit "$(git -C "$repo" rev-parse HEAD 2>/dev/null || printf '0%.0s' {1..40})" \
  --toolchain "$(rustc -V)" --cargo-lock "$repo/Cargo.lock" --flake-lock "$repo/flake.lock" \
  --out "$work/release" "$work/artifacts/paramant" "$work/artifacts/paramantOS_0.1.0.raw" >/dev/null
"$bin" release verify --public-keys "$work/keys/paramant-release.pub" --artifacts "$work/artifacts" \
  "$work/release/manifest.json" || fail "a fresh release does not verify"
echo "release-check: ok   sign, then verify with both keys"

"$python" - "$work/keys/paramant-release.pub" "$work/release/manifest.json" <<'PY' || fail "the independent verifier refused the signatures"
"""Independent check with Python `cryptography`: both signatures over the manifest's bytes."""
import base64, re, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa

keys_file, manifest = sys.argv[1:3]
pems = re.findall(rb"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----\n", open(keys_file, "rb").read(), re.S)
keys = [serialization.load_pem_public_key(p) for p in pems]
ecdsa = next(k for k in keys if isinstance(k, ec.EllipticCurvePublicKey))
ml_dsa = next(k for k in keys if isinstance(k, mldsa.MLDSA65PublicKey))
assert ecdsa.curve.name == "secp256r1"
data = open(manifest, "rb").read()
ecdsa.verify(base64.b64decode(open(manifest + ".sig").read()), data, ec.ECDSA(hashes.SHA256()))
ml_dsa.verify(base64.b64decode(open(manifest + ".ml-dsa-65.sig").read()), data)
for bad in (data + b" ", data.replace(b"0.1.0", b"0.1.1")):
    try:
        ml_dsa.verify(base64.b64decode(open(manifest + ".ml-dsa-65.sig").read()), bad)
        raise SystemExit("ML-DSA-65 accepted changed bytes")
    except Exception as e:  # InvalidSignature
        if isinstance(e, SystemExit):
            raise
print("release-check: ok   Python cryptography verifies the ECDSA P-256 (cosign) and ML-DSA-65 signatures")
PY

refuses() {
  local what="$1"; shift
  if "$bin" release verify --public-keys "$work/keys/paramant-release.pub" --artifacts "$work/artifacts" \
       "$work/case/manifest.json" 2> "$work/err"; then
    fail "verify accepted $what"
  fi
  echo "release-check: ok   refuses $what: $(tail -1 "$work/err")"
}
fresh() { rm -rf "$work/case"; cp -a "$work/release" "$work/case"; }
fresh; sed -i 's/"0.1.0"/"0.1.1"/' "$work/case/manifest.json"; refuses "a tampered manifest"
fresh; rm "$work/case/manifest.json.ml-dsa-65.sig"; refuses "a release without its ML-DSA-65 signature"
fresh; cp "$work/artifacts/paramant" "$work/paramant.orig"; printf 'x' >> "$work/artifacts/paramant"
refuses "a tampered artifact"; cp "$work/paramant.orig" "$work/artifacts/paramant"

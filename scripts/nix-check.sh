#!/usr/bin/env bash
# The Nix side, checked without nixpkgs or a Nix store (what needs them is listed in README
# "The Nix side"): every .nix file parses; deadnix finds no dead code; the NixOS modules,
# evaluated by nixpkgs' real lib.evalModules (../shared/nixpkgs-lib/lib, or $NIXPKGS_LIB) with
# a test declaration of the NixOS options they set, keep their types, defaults and assertions
# (nixos-modules/tests/eval.nix) and produce exactly the units and configs the Debian systemd
# harness boots (scripts/render-units.sh); flake.lock is well formed and pins nixpkgs by
# revision and narHash; vm-tests/ collects every scenario file.
#
# usage: scripts/nix-check.sh        (installs nix-bin with apt and deadnix with cargo if missing)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
# nixpkgs' lib/: $NIXPKGS_LIB, else ../shared/nixpkgs-lib/lib next to the checkout (CI), else
# one level further up (a worktree under /work/wt/).
lib_dir=""
for candidate in "${NIXPKGS_LIB:-}" "$repo/../shared/nixpkgs-lib/lib" "$repo/../../shared/nixpkgs-lib/lib"; do
  if [ -n "$candidate" ] && [ -f "$candidate/default.nix" ]; then lib_dir="$candidate"; break; fi
done
[ -n "$lib_dir" ] || { echo "nix-check: no nixpkgs lib in ../shared/nixpkgs-lib/lib (set NIXPKGS_LIB)" >&2; exit 1; }
lib_dir="$(cd "$lib_dir" && pwd)"
export NIX_CONFIG="build-users-group ="
step() { echo "== nix-check: $*" >&2; }

if ! command -v nix-instantiate >/dev/null; then
  step "installing nix-bin"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null; }
fi

step "every .nix file parses"
nix_files=()
while IFS= read -r -d '' f; do nix_files+=("$f"); done \
  < <(find . -name '*.nix' -not -path './target/*' -not -path './.git/*' -not -path './.venv*' -print0 | sort -z)
for f in "${nix_files[@]}"; do
  nix-instantiate --parse "$f" >/dev/null || { echo "nix-check: $f does not parse" >&2; exit 1; }
done
echo "nix-check: ${#nix_files[@]} files parse"

step "deadnix (no unused bindings or arguments)"
# Installed once into the cargo target dir (kept between CI runs that keep target/).
tools="${PARAMANT_TOOLS_DIR:-$repo/target/tools}"
deadnix_version=1.3.1
if ! "$tools/bin/deadnix" --version 2>/dev/null | grep -q "$deadnix_version"; then
  start=$EPOCHSECONDS
  cargo install --quiet --locked --root "$tools" --version "$deadnix_version" deadnix
  echo "nix-check: installed deadnix $deadnix_version in $((EPOCHSECONDS - start)) s" >&2
fi
"$tools/bin/deadnix" --fail "${nix_files[@]}"

step "the NixOS modules under lib.evalModules (nixos-modules/tests/eval.nix)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
nix-instantiate --eval --strict --json nixos-modules/tests/eval.nix --arg lib "import $lib_dir" > "$work/eval.json"

step "the modules' units are the Debian harness's units (scripts/render-units.sh)"
bash scripts/render-units.sh --no-score --out "$work/rendered" 2>/dev/null
bash scripts/render-units.sh --no-score --services ctlog,relay,admin,license --out "$work/rendered-full" 2>/dev/null

step "flake.lock"
python3 - "$work" <<'PY'
import base64, json, os, re, subprocess, sys

work = sys.argv[1]
failed = 0
def report(ok, name, detail=""):
    global failed
    failed += not ok
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))

# 1. Module evaluation cases.
ev = json.load(open(os.path.join(work, "eval.json")))
for r in ev["results"]:
    report(r["ok"], "modules: " + r["name"], r["detail"])

# 2. The modules' units and files against the harness's (render-units.sh evaluates units.nix
#    directly). The secrets script is a store file under NixOS, a file in the harness.
#    Twice: the default services (ctlog, relay) and all four (admin and license enabled).
for rendered, key, label in (("rendered", "harness", ""), ("rendered-full", "harnessFull", " (with admin, license)")):
    harness = json.load(open(os.path.join(work, rendered, "units.json")))
    mod = ev[key]
    for name in sorted(set(harness["units"]) | set(mod["units"])):
        a, b = harness["units"].get(name), mod["units"].get(name)
        report(a == b, f"units{label}: {name} identical in the modules and the harness",
               "only in the harness" if b is None else "only in the modules" if a is None
               else json.dumps({s: {k: (a.get(s, {}).get(k), b.get(s, {}).get(k)) for k in set(a.get(s, {})) | set(b.get(s, {}))
                                    if a.get(s, {}).get(k) != b.get(s, {}).get(k)} for s in ("Unit", "Service", "Timer", "Install")}))
    harness_files = {k: v for k, v in harness["files"].items() if not k.startswith("usr/")}
    report(harness_files == mod["files"], f"configs{label}: the {len(mod['files'])} TOML files are identical",
           str(sorted(set(harness_files) ^ set(mod["files"])) or [k for k in mod["files"] if harness_files.get(k) != mod["files"][k]]))

# 3. flake.lock: format 7, root inputs exactly flake.nix's, nixpkgs pinned to a released branch.
lock = json.load(open("flake.lock"))
report(lock.get("version") == 7 and lock.get("root") in lock.get("nodes", {}), "flake.lock: version 7 with a root node")
root_inputs = lock["nodes"][lock["root"]].get("inputs", {})
declared = json.loads(subprocess.run(
    ["nix-instantiate", "--eval", "--strict", "--json", "-E", "builtins.attrNames (import ./flake.nix).inputs"],
    check=True, capture_output=True, text=True).stdout)
report(sorted(root_inputs) == sorted(declared), "flake.lock: locks exactly the inputs flake.nix declares",
       f"lock {sorted(root_inputs)} vs flake.nix {declared}")
for name, node_name in root_inputs.items():
    node = lock["nodes"].get(node_name, {})
    locked, original = node.get("locked", {}), node.get("original", {})
    nar = locked.get("narHash", "")
    try:
        nar_ok = nar.startswith("sha256-") and len(base64.b64decode(nar[7:], validate=True)) == 32
    except ValueError:
        nar_ok = False
    report(bool(re.fullmatch(r"[0-9a-f]{40}", locked.get("rev", ""))) and nar_ok
           and isinstance(locked.get("lastModified"), int) and locked.get("type") == original.get("type") == "github",
           f"flake.lock: {name} pinned by rev and a 32-byte sha256 narHash", json.dumps(locked))
nixpkgs = lock["nodes"][root_inputs["nixpkgs"]]
report(nixpkgs["locked"].get("owner", "").lower() == "nixos" and nixpkgs["locked"].get("repo") == "nixpkgs"
       and bool(re.fullmatch(r"nixos-\d\d\.\d\d", nixpkgs["original"].get("ref", ""))),
       "flake.lock: nixpkgs follows a released branch (nixos-YY.MM)", json.dumps(nixpkgs["original"]))
sys.exit(1 if failed else 0)
PY

step "vm-tests/ collects every scenario file"
nix-instantiate --eval --strict --json -E "
  let
    lib = import $lib_dir;
    # TEST ONLY: a runNixOSTest that returns the scenario's name instead of building a VM.
    collected = import ./vm-tests { inherit lib; runNixOSTest = t: t.name; scenarioArgs = { self = { }; pkgs = { }; inherit lib; }; };
    files = lib.filter (f: lib.hasSuffix \".nix\" f && f != \"default.nix\")
      (builtins.attrNames (builtins.readDir ./vm-tests));
  in { inherit collected; count = builtins.length files; }" > "$work/vm.json"
python3 - "$work/vm.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = len(d["collected"]) == d["count"] and all(k == v for k, v in d["collected"].items())
print(("ok   " if ok else "FAIL ") + f"vm-tests: {len(d['collected'])} of {d['count']} scenario files collected, each named after its file")
sys.exit(0 if ok else 1)
PY
step "flake.nix outputs (against a fake nixpkgs: nixos-modules/tests/flake-outputs.nix)"
nix-instantiate --eval --strict --json nixos-modules/tests/flake-outputs.nix --arg lib "import $lib_dir" > "$work/flake.json"
python3 - "$work/flake.json" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
scenarios = sorted(f[:-4] for f in os.listdir("vm-tests") if f.endswith(".nix") and f != "default.nix")
want = {
    "packages x86_64-linux": (d["packages"]["x86_64-linux"], ["default", "image", "paramant", "paramant-ctlog", "paramant-relay"]),
    "packages aarch64-linux": (d["packages"]["aarch64-linux"], ["default", "paramant", "paramant-ctlog", "paramant-relay"]),
    "checks x86_64-linux": (d["checks"]["x86_64-linux"], sorted(["cargo-test", "clippy", "fmt"] + scenarios)),
    "checks aarch64-linux": (d["checks"]["aarch64-linux"], ["cargo-test", "clippy", "fmt"]),
    "nixosModules": (d["nixosModules"], ["admin", "ctlog", "default", "license", "paramantOS", "relay"]),
    "nixosConfigurations": (d["nixosConfigurations"], ["paramantOS"]),
    "devShells": (d["devShells"]["x86_64-linux"], ["default"]),
}
failed = 0
for name, (got, expected) in want.items():
    ok = got == expected
    failed += not ok
    print(("ok   " if ok else "FAIL ") + f"flake: {name}: {', '.join(got)}" + ("" if ok else f" (expected {expected})"))
exec_start = d["moduleExecStart"]
ok = exec_start == "/nix/store/eval-test-paramant/bin/paramant-relay run --config /etc/paramant/relay/%i.toml"
failed += not ok
print(("ok   " if ok else "FAIL ") + f"flake: nixosModules.relay + .admin + .license together run the flake's package: {exec_start}")
vm = {k: v for k, v in d["checkNames"]["x86_64-linux"].items() if k in scenarios}
ok = all(v == f"vm-test-{k}" for k, v in vm.items())
print(("ok   " if ok else "FAIL ") + "flake: each VM test check runs the scenario of its file")
sys.exit(1 if failed or not ok else 0)
PY
echo "nix-check: ok" >&2

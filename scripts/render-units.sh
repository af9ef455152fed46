#!/usr/bin/env bash
# Renders the paramant systemd units and per-instance TOML configs from the builtins-only Nix
# files in nixos-modules/lib/ (the same data the NixOS modules import), with Debian's nix-bin
# (`nix-instantiate --eval --strict --json`), then scores every rendered service with
# `systemd-analyze security --offline=true` and fails above the threshold.
#
# usage: scripts/render-units.sh [--out DIR] [--services ctlog,relay] [--threshold N]
#                                [--arg NAME NIXEXPR]... [--no-score]
#   --out DIR        where to write (a root-like tree: DIR/etc/systemd/system/…, DIR/etc/paramant/…);
#                    default: target/rendered-units
#   --services LIST  which services get instances in paramant.target (default: ctlog,relay)
#   --threshold N    highest allowed exposure, in tenths (default 15 = 1.5)
#   --arg NAME EXPR  extra argument for nixos-modules/lib/units.nix, as a Nix expression
# Prints one line per unit with its exposure; scores are also written to DIR/scores.txt.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/target/rendered-units"
services="ctlog,relay"
threshold=15
score=yes
extra_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --services) services="$2"; shift 2 ;;
    --threshold) threshold="$2"; shift 2 ;;
    --arg) extra_args+=("$2 = $3;"); shift 3 ;;
    --no-score) score=no; shift ;;
    *) echo "render-units: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

if ! command -v nix-instantiate >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "render-units: installing nix-bin (Debian's Nix, for nix-instantiate)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nix-bin >/dev/null; }
  else
    echo "render-units: nix-instantiate is missing: apt-get install nix-bin" >&2
    exit 1
  fi
fi
# Plain evaluation needs no daemon and no build users; Debian's nix.conf names a nixbld group
# that does not exist and Nix warns about it on every call.
export NIX_CONFIG="build-users-group ="

echo "== nix-instantiate --parse (every .nix file)" >&2
while IFS= read -r -d '' f; do
  nix-instantiate --parse "$f" >/dev/null || { echo "render-units: $f does not parse" >&2; exit 1; }
done < <(find "$repo" -name '*.nix' -not -path '*/target/*' -not -path '*/.git/*' -print0)

services_nix="[ $(printf '"%s" ' ${services//,/ })]"
expr="import $repo/nixos-modules/lib/units.nix { services = $services_nix; ${extra_args[*]:-} }"
json="$(nix-instantiate --eval --strict --json -E "$expr")"

rm -rf "$out"
mkdir -p "$out"
printf '%s\n' "$json" > "$out/units.json"
python3 - "$out" <<'PY'
"""Writes the evaluated units (INI, NixOS's rendering rules) and files under the output dir."""
import json, os, sys

out = sys.argv[1]
data = json.load(open(os.path.join(out, "units.json")))

def value(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)

def render(unit):
    lines = ["# Rendered from nixos-modules/lib/units.nix by scripts/render-units.sh; do not edit."]
    for section in ("Unit", "Service", "Timer", "Install"):
        settings = unit.get(section) or {}
        if not settings:
            continue
        lines += ["", f"[{section}]"]
        for key in sorted(settings):
            v = settings[key]
            for item in (v if isinstance(v, list) else [v]):
                lines.append(f"{key}={value(item)}")
    return "\n".join(lines) + "\n"

unit_dir = os.path.join(out, "etc/systemd/system")
os.makedirs(unit_dir, exist_ok=True)
for name, unit in data["units"].items():
    with open(os.path.join(unit_dir, name), "w") as f:
        f.write(render(unit))
for path, spec in data["files"].items():
    full = os.path.join(out, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(spec["text"])
    os.chmod(full, int(spec["mode"], 8))
with open(os.path.join(out, "instances.txt"), "w") as f:
    f.write("\n".join(data["instances"]) + "\n")
PY
echo "render-units: wrote $out" >&2

[ "$score" = yes ] || exit 0
command -v systemd-analyze >/dev/null || { echo "render-units: systemd-analyze is missing (apt-get install systemd)" >&2; exit 1; }
# Templates are scored as one instance (`--offline` needs a unit file whose name it can load;
# the instance name makes %i resolve). Every service unit is scored, the oneshot too.
score_dir="$(mktemp -d)"
trap 'rm -rf "$score_dir"' EXIT
: > "$out/scores.txt"
fail=0
for unit in "$out"/etc/systemd/system/*.service; do
  name="$(basename "$unit")"
  scored="$name"
  case "$name" in *@.service) scored="${name%@.service}@health.service" ;; esac
  cp "$unit" "$score_dir/$scored"
  report="$(cd "$score_dir" && systemd-analyze security --offline=true --threshold="$threshold" "$scored" 2>&1)" && ok=yes || ok=no
  exposure="$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -1)"
  printf '%-28s exposure %s%s\n' "$name" "${exposure:-?}" "$([ $ok = yes ] || echo "  FAILS threshold $threshold")" | tee -a "$out/scores.txt"
  if [ $ok = no ]; then
    fail=1
    printf '%s\n' "$report" | grep -v '^✓' >&2
  fi
done
exit $fail

#!/usr/bin/env bash
# Rebuilds noble-pq.min.js from npm (exact versions, checked integrity) and checks that the
# result is byte-identical to the committed file. Needs node and npm; nothing runs at install
# (--ignore-scripts: esbuild's optional platform package carries its binary).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > package.json <<'JSON'
{ "name": "noble-bundle", "version": "0.0.0", "private": true,
  "dependencies": { "@noble/post-quantum": "0.7.1", "@noble/hashes": "2.4.0", "esbuild": "0.28.2" } }
JSON
npm install --ignore-scripts --no-audit --no-fund --silent
node -e '
const lock = require("./package-lock.json").packages;
const want = {
  "node_modules/@noble/post-quantum": "sha512-+P9981IiAnVh+rmcubozzVwrEy3XsN/tMhTnvsjV9VDaYpOnNCqWqKo2FLWxbu92YHfjGIlE5XnW175UK+ln+Q==",
  "node_modules/@noble/hashes": "sha512-X5XaVWZIBCT7HHZGm5I7ZQXDwLG+bGXuSrMQAW+7Zvl87h1kmc1ZB1VSRJcpUfoUrGQp4Fkoxm5kZ+Ms+aW+eA==",
};
for (const [k, v] of Object.entries(want)) if (lock[k].integrity !== v) { console.error("integrity mismatch", k); process.exit(1); }'
printf '%s\n' "export { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';" "export { sha3_256 } from '@noble/hashes/sha3.js';" > entry.js
npx esbuild entry.js --bundle --minify --format=iife --global-name=nobleCt --target=es2020 --log-level=warning \
  --banner:js="$(cat "$here/noble-banner.txt")" --outfile=noble-pq.min.js
if cmp -s noble-pq.min.js "$here/noble-pq.min.js"; then echo "noble-pq.min.js: identical to the npm build"; else
  cp noble-pq.min.js "$here/noble-pq.min.js.new"; echo "noble-pq.min.js differs: new build at noble-pq.min.js.new" >&2; exit 1; fi

//! The /ct/ page verifies in the browser with the bundled @noble code: run that JavaScript under
//! node against the published SHA3-256 tree vectors (including proofs that must be rejected) and
//! against STHs signed by our Rust ML-DSA-65 key (including forgeries that must be rejected).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;

/// Loads the vendored bundle into the global scope the way the page's `<script>` tag does.
const LOAD: &str = r#"
const vm = require("vm"), fs = require("fs");
vm.runInThisContext(fs.readFileSync(process.argv[1] + "/vendor/noble-pq.min.js", "utf8"));
globalThis.nobleCt = nobleCt;
const ui = require(process.argv[1] + "/ct_ui.js");
"#;

const CHECK: &str = r#"
const v = require(process.argv[2]);
const h = (x) => ui.fromHex(x);
let checked = 0, failures = [];
const leaf = (i) => h(v.leaf_hashes[i]);
for (const c of v.inclusion) {
  const proof = c.path.map(h);
  const root = ui.rootFromInclusion(c.index, c.size, leaf(c.index), proof);
  if (root === null || ui.toHex(root) !== v.roots_by_size[c.size]) failures.push("inclusion " + JSON.stringify(c));
  if (proof.length > 0) {
    const bad = proof.map((p) => p.slice()); bad[0][0] ^= 1;
    const r2 = ui.rootFromInclusion(c.index, c.size, leaf(c.index), bad);
    if (r2 !== null && ui.toHex(r2) === v.roots_by_size[c.size]) failures.push("accepted a flipped bit " + JSON.stringify(c));
  }
  checked++;
}
for (const c of v.consistency) {
  const proof = c.proof.map(h);
  const r1 = h(v.roots_by_size[c.size1]), r2 = h(v.roots_by_size[c.size2]);
  if (!ui.verifyConsistency(c.size1, c.size2, proof, r1, r2)) failures.push("consistency " + JSON.stringify(c));
  if (c.size1 !== c.size2 && ui.verifyConsistency(c.size1, c.size2, proof, r1, h(v.roots_by_size[c.size1]))) failures.push("accepted a wrong new root " + JSON.stringify(c));
  checked++;
}
if (ui.toHex(ui.sha3_256(new Uint8Array())) !== v.empty_root) failures.push("empty root");
console.log(JSON.stringify({ checked, failures }));
"#;

#[test]
fn the_web_ui_checks_proofs_exactly_like_the_published_sha3_vectors() {
    let vectors = format!("{}/../tlog/testdata/sha3-256-tree.json", env!("CARGO_MANIFEST_DIR"));
    let result = node(CHECK, &vectors);
    assert_eq!(result["failures"], serde_json::json!([]));
    assert_eq!(result["checked"], 72, "every inclusion and consistency vector was checked");
}

fn node(script: &str, arg: &str) -> serde_json::Value {
    let src = format!("{}/src", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .args(["-e", &format!("{LOAD}{script}"), "--", &src, arg])
        .output()
        .expect("node must be installed (the CI script installs it)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

const VERIFY_STHS: &str = r#"
const c = JSON.parse(process.argv[2]);
const pk = ui.fromB64(c.public_key), other = ui.fromB64(c.other_key);
const flip = (s) => { const b = ui.fromB64(s); b[100] ^= 1; return Buffer.from(b).toString("base64"); };
console.log(JSON.stringify({
  honest: c.sths.map((s) => ui.verifySth(s, pk)),
  bad_signature: c.sths.map((s) => ui.verifySth({ ...s, signature: flip(s.signature) }, pk)),
  other_root: c.sths.map((s) => ui.verifySth({ ...s, sha3_root: "00".repeat(32) }, pk)),
  other_size: c.sths.map((s) => ui.verifySth({ ...s, tree_size: s.tree_size + 1 }, pk)),
  other_key: c.sths.map((s) => ui.verifySth({ ...s, pk_hash: ui.toHex(ui.sha3_256(other)) }, other)),
  signed_bytes_match: c.sths.every((s, i) => Buffer.from(ui.sthSignedBytes(s)).toString("base64") === c.signed_bytes[i]),
}));
"#;

#[test]
fn the_bundled_ml_dsa_65_accepts_our_rust_signatures_and_rejects_forgeries() {
    let key = crypto::LogSigningKey::from_seed(&[7; 32]);
    let other = crypto::LogSigningKey::from_seed(&[8; 32]);
    let bodies = [
        wire::SthBody {
            relay_id: "health.example".into(),
            sha3_root: "ab".repeat(32),
            timestamp: 1_700_000_000_123,
            tree_size: 0,
            version: 1,
        },
        wire::SthBody {
            relay_id: "relais-é\"\\<>.example".into(),
            sha3_root: "0f".repeat(32),
            timestamp: 9_007_199_254_740_991,
            tree_size: 4_294_967_297,
            version: 1,
        },
    ];
    let signed_bytes: Vec<String> = bodies.iter().map(|b| wire::b64(b.signed_bytes())).collect();
    let sths: Vec<_> = bodies.into_iter().map(|b| b.sign(&key)).collect();
    let case = serde_json::json!({
        "public_key": wire::b64(key.verifying_key().to_bytes()),
        "other_key": wire::b64(other.verifying_key().to_bytes()),
        "sths": sths,
        "signed_bytes": signed_bytes,
    });
    let result = node(VERIFY_STHS, &case.to_string());
    assert_eq!(result["signed_bytes_match"], true, "the page signs over exactly our canonical JSON");
    assert_eq!(result["honest"], serde_json::json!([true, true]));
    for forged in ["bad_signature", "other_root", "other_size", "other_key"] {
        assert_eq!(result[forged], serde_json::json!([false, false]), "{forged}");
    }
}

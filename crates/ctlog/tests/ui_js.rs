//! The /ct/ page verifies proofs in the browser with its own SHA3-256: run that JavaScript under
//! node against the published SHA3-256 tree vectors, including proofs that must be rejected.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;

const CHECK: &str = r#"
const ui = require(process.argv[1]);
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
    let manifest = env!("CARGO_MANIFEST_DIR");
    let ui = format!("{manifest}/src/ct_ui.js");
    let vectors = format!("{manifest}/../tlog/testdata/sha3-256-tree.json");
    let output = Command::new("node")
        .args(["-e", CHECK, "--", &ui, &vectors])
        .output()
        .expect("node must be installed (the CI script installs it)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["failures"], serde_json::json!([]));
    assert_eq!(result["checked"], 72, "every inclusion and consistency vector was checked");
}

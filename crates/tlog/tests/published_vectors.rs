//! Published vectors: transparency-dev/merkle's RFC 6962 inclusion and consistency cases
//! (SHA-256), and the project's SHA3-256 twin of the same eight-leaf tree.
//!
//! `testdata/transparency-dev-merkle/testdata/subtree*` are left out on purpose: they test
//! subtree inclusion and consistency (draft-ietf-plants-merkle-tree-certs), an API this crate
//! does not have.

mod oracle;

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use tlog::{
    CompactRange, Hash, Sha3_256, Sha256, TreeHasher, consistency_nodes, inclusion_nodes, verify_consistency,
    verify_inclusion,
};

/// Inputs of the RFC 6962 reference tree, the tree behind every happy-path vector.
const LEAF_INPUTS_HEX: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    want_err: bool,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn vector_files(kind: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_json(&testdata().join("transparency-dev-merkle/testdata").join(kind), &mut files);
    files.sort();
    files
}

fn collect_json(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("vector directory is readable") {
        let path = entry.expect("directory entry is readable").path();
        if path.is_dir() {
            collect_json(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = fs::read_to_string(path).expect("vector file is readable");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn base64_bytes(value: &str) -> Vec<u8> {
    BASE64.decode(value).expect("vectors hold valid base64")
}

/// Leaf and proof hashes are hashed further, so a value that is not 32 bytes cannot become a
/// `Hash`: the vector is rejected at parsing (transparency-dev checks the leaf length too).
fn exact_hash(value: &str) -> Option<Hash> {
    Hash::try_from(base64_bytes(value)).ok()
}

fn exact_hashes(values: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    values.iter().flatten().map(|value| exact_hash(value)).collect()
}

/// Roots are only compared. A malformed root (the vectors use short "don't care" strings)
/// becomes a stand-in equal only to the stand-in of the same bytes, as Go's byte comparison
/// has it: `sizes-are-equal-one-and-proof-is-empty` expects two equal 12-byte roots to pass.
fn root_value(value: &str) -> Hash {
    let bytes = base64_bytes(value);
    Hash::try_from(bytes.as_slice()).unwrap_or_else(|_| Sha256::digest(&[b"stand-in:", &bytes]))
}

fn inclusion_accepted(v: &InclusionVector) -> bool {
    let (Some(leaf), Some(proof)) = (exact_hash(&v.leaf_hash), exact_hashes(&v.proof)) else {
        return false;
    };
    verify_inclusion::<Sha256>(v.leaf_idx, v.tree_size, &leaf, &proof, &root_value(&v.root)).is_ok()
}

fn consistency_accepted(v: &ConsistencyVector) -> bool {
    let Some(proof) = exact_hashes(&v.proof) else {
        return false;
    };
    let (root1, root2) = (root_value(&v.root1), root_value(&v.root2));
    verify_consistency::<Sha256>(v.size1, v.size2, &proof, &root1, &root2).is_ok()
}

/// Checks every file against `accepted`, and that there are `expected_files` of them so a
/// missing directory cannot make the test pass.
fn judge_all<T: serde::de::DeserializeOwned>(
    kind: &str,
    expected_files: usize,
    want_err: impl Fn(&T) -> bool,
    accepted: impl Fn(&T) -> bool,
) {
    let files = vector_files(kind);
    assert_eq!(files.len(), expected_files, "{kind} vector files");
    let misjudged: Vec<String> = files
        .iter()
        .filter(|path| {
            let vector: T = read_json(path);
            accepted(&vector) == want_err(&vector)
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(misjudged.is_empty(), "misjudged vectors: {misjudged:#?}");
}

#[test]
fn every_published_inclusion_vector_is_judged_correctly() {
    judge_all("inclusion", 98, |v: &InclusionVector| v.want_err, inclusion_accepted);
}

#[test]
fn every_published_consistency_vector_is_judged_correctly() {
    judge_all("consistency", 98, |v: &ConsistencyVector| v.want_err, consistency_accepted);
}

fn reference_leaves<H: TreeHasher>() -> Vec<Hash> {
    let inputs = LEAF_INPUTS_HEX.iter().map(|h| hex::decode(h).expect("constant is hex"));
    inputs.map(|input| H::hash_leaf(&input)).collect()
}

/// A proof produced the way storage will: fetch the named nodes, then rehash.
fn served<H: TreeHasher>(leaves: &[Hash], nodes: &tlog::ProofNodes) -> Vec<Hash> {
    let hashes: Vec<Hash> = nodes.ids().iter().map(|&id| oracle::node_hash::<H>(leaves, id)).collect();
    nodes.rehash::<H>(&hashes).expect("one hash per id")
}

fn happy_paths(kind: &str) -> Vec<PathBuf> {
    let files = vector_files(kind).into_iter();
    files.filter(|path| path.ends_with("happy-path.json")).collect()
}

#[test]
fn published_inclusion_happy_paths_are_what_the_generator_serves() {
    let leaves = reference_leaves::<Sha256>();
    let files = happy_paths("inclusion");
    assert_eq!(files.len(), 5);
    for path in files {
        let v: InclusionVector = read_json(&path);
        let size = usize::try_from(v.tree_size).expect("small tree");
        let index = usize::try_from(v.leaf_idx).expect("small tree");
        assert_eq!(exact_hash(&v.root), Some(oracle::mth::<Sha256>(&leaves[..size])));
        assert_eq!(exact_hash(&v.leaf_hash), Some(leaves[index]));
        let nodes = inclusion_nodes(v.leaf_idx, v.tree_size).expect("index is inside the tree");
        let want = exact_hashes(&v.proof).expect("happy paths hold 32-byte hashes");
        assert_eq!(served::<Sha256>(&leaves, &nodes), want, "{}", path.display());
    }
}

#[test]
fn published_consistency_happy_paths_are_what_the_generator_serves() {
    let leaves = reference_leaves::<Sha256>();
    let files = happy_paths("consistency");
    assert_eq!(files.len(), 5);
    for path in files {
        let v: ConsistencyVector = read_json(&path);
        for (size, root) in [(v.size1, &v.root1), (v.size2, &v.root2)] {
            let size = usize::try_from(size).expect("small tree");
            assert_eq!(exact_hash(root), Some(oracle::mth::<Sha256>(&leaves[..size])));
        }
        let nodes = consistency_nodes(v.size1, v.size2).expect("sizes are ordered");
        let want = exact_hashes(&v.proof).expect("happy paths hold 32-byte hashes");
        assert_eq!(served::<Sha256>(&leaves, &nodes), want, "{}", path.display());
    }
}

#[derive(Deserialize)]
struct Sha3Tree {
    leaf_inputs_hex: Vec<String>,
    empty_root: String,
    leaf_hashes: Vec<String>,
    roots_by_size: Vec<String>,
    inclusion: Vec<Sha3Inclusion>,
    consistency: Vec<Sha3Consistency>,
}

#[derive(Deserialize)]
struct Sha3Inclusion {
    index: u64,
    size: u64,
    path: Vec<String>,
}

#[derive(Deserialize)]
struct Sha3Consistency {
    size1: u64,
    size2: u64,
    proof: Vec<String>,
}

fn sha3_tree() -> Sha3Tree {
    read_json(&testdata().join("sha3-256-tree.json"))
}

fn hex_hash(value: &str) -> Hash {
    let bytes = hex::decode(value).expect("vector holds hex");
    Hash::try_from(bytes).expect("vector holds 32-byte hashes")
}

fn hex_hashes(values: &[String]) -> Vec<Hash> {
    values.iter().map(|value| hex_hash(value)).collect()
}

#[test]
fn sha3_tree_leaf_hashes_and_roots_match_for_every_size() {
    let tree = sha3_tree();
    assert_eq!(tree.leaf_inputs_hex, LEAF_INPUTS_HEX);
    assert_eq!(reference_leaves::<Sha3_256>(), hex_hashes(&tree.leaf_hashes));
    assert_eq!(Sha3_256::empty_root(), hex_hash(&tree.empty_root));
    let mut range = CompactRange::<Sha3_256>::new();
    let mut roots = vec![range.root()];
    for leaf in reference_leaves::<Sha3_256>() {
        range.append(leaf, |_, _| {});
        roots.push(range.root());
    }
    assert_eq!(roots, hex_hashes(&tree.roots_by_size));
}

#[test]
fn sha3_tree_inclusion_paths_are_generated_and_verified() {
    let tree = sha3_tree();
    let leaves = reference_leaves::<Sha3_256>();
    let roots = hex_hashes(&tree.roots_by_size);
    assert_eq!(tree.inclusion.len(), 36, "every (index, size) of the 8-leaf tree");
    for case in &tree.inclusion {
        let want = hex_hashes(&case.path);
        let nodes = inclusion_nodes(case.index, case.size).expect("index is inside the tree");
        assert_eq!(served::<Sha3_256>(&leaves, &nodes), want, "{} in {}", case.index, case.size);
        let (leaf, root) = (&leaves[case.index as usize], &roots[case.size as usize]);
        assert_eq!(verify_inclusion::<Sha3_256>(case.index, case.size, leaf, &want, root), Ok(()));
    }
}

#[test]
fn sha3_tree_consistency_proofs_are_generated_and_verified() {
    let tree = sha3_tree();
    let leaves = reference_leaves::<Sha3_256>();
    let roots = hex_hashes(&tree.roots_by_size);
    assert_eq!(tree.consistency.len(), 36, "every 0 < size1 <= size2 <= 8");
    for case in &tree.consistency {
        let (size1, size2) = (case.size1, case.size2);
        let want = hex_hashes(&case.proof);
        let nodes = consistency_nodes(size1, size2).expect("sizes are ordered");
        assert_eq!(served::<Sha3_256>(&leaves, &nodes), want, "{size1} to {size2}");
        let (root1, root2) = (&roots[size1 as usize], &roots[size2 as usize]);
        assert_eq!(verify_consistency::<Sha3_256>(size1, size2, &want, root1, root2), Ok(()));
    }
}

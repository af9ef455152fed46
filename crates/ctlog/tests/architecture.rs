//! ARCHITECTURE.md states which workspace crates each crate may depend on (its `layering`
//! block); this checks the real dependency graph (`cargo metadata`) against it: every crate is
//! listed, no crate depends on one its line does not allow, and `pure` crates depend on no IO,
//! clock or async crate.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Crates a `pure` crate may not depend on: they do IO, read the clock or run async.
const IMPURE: &[&str] = &["tokio", "redb", "getrandom", "crypto", "hyper", "axum", "ureq", "nix", "libc", "harden"];

struct Rule {
    pure: bool,
    allowed: BTreeSet<String>,
}

fn rules(architecture: &str) -> BTreeMap<String, Rule> {
    let block = architecture
        .split("```layering\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```layering block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, deps) = line.split_once(':').expect("`crate: deps` lines");
            let words: BTreeSet<String> = deps.split_whitespace().map(str::to_owned).collect();
            let pure = words.contains("pure");
            let allowed = words.into_iter().filter(|w| w != "pure").collect();
            (name.trim().to_owned(), Rule { pure, allowed })
        })
        .collect()
}

#[test]
fn crate_dependencies_follow_the_layering_in_architecture_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let rules = rules(&architecture);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let workspace: BTreeSet<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut problems = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap();
        let Some(rule) = rules.get(name) else {
            problems.push(format!("crate {name} is not in ARCHITECTURE.md's layering block"));
            continue;
        };
        for dep in package["dependencies"].as_array().unwrap() {
            // Only normal dependencies: tests may use anything.
            if !dep["kind"].is_null() {
                continue;
            }
            let dep = dep["name"].as_str().unwrap();
            if workspace.contains(dep) && !rule.allowed.contains(dep) {
                problems.push(format!("{name} depends on {dep}, which its layering line does not allow"));
            }
            if rule.pure && IMPURE.contains(&dep) {
                problems.push(format!("{name} is pure but depends on {dep}"));
            }
        }
    }
    for listed in rules.keys() {
        if !workspace.contains(listed.as_str()) {
            problems.push(format!("ARCHITECTURE.md lists {listed}, which is not a workspace crate"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

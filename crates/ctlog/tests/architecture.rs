//! ARCHITECTURE.md states which workspace crates each crate may depend on (its `layering`
//! block); this checks the real dependency graph (`cargo metadata`) against it: every crate is
//! listed, no crate depends on one its line does not allow, and `pure` crates depend on no IO,
//! clock or async crate. Also: every library crate denies `missing_docs`, and the services log
//! through `tracing`, not `eprintln!`.
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
    let packages = workspace_packages(&root);
    let workspace: BTreeSet<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut problems = Vec::new();
    for package in &packages {
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

/// The workspace's packages as `cargo metadata` sees them.
fn workspace_packages(root: &Path) -> Vec<serde_json::Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"].as_array().unwrap().clone()
}

#[test]
fn every_library_crate_denies_missing_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut undocumented = Vec::new();
    for package in workspace_packages(&root) {
        for target in package["targets"].as_array().unwrap() {
            if !target["kind"].as_array().unwrap().iter().any(|k| k == "lib") {
                continue;
            }
            let lib = std::fs::read_to_string(target["src_path"].as_str().unwrap()).unwrap();
            if !lib.lines().any(|l| l.trim() == "#![deny(missing_docs)]") {
                undocumented.push(package["name"].as_str().unwrap().to_owned());
            }
        }
    }
    assert!(undocumented.is_empty(), "library crates without #![deny(missing_docs)]: {undocumented:?}");
}

/// The services write log lines through `tracing` (monitoring's subscriber), never straight to
/// stderr; only their command lines (`cli.rs`: usage and start-up errors) and test helpers may.
#[test]
fn services_log_through_tracing_not_eprintln() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut stray = Vec::new();
    for service in ["ctlog", "relay", "admin", "license-service", "jsonapi", "httpserve"] {
        let mut dirs = vec![root.join("crates").join(service).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let name = path.file_name().unwrap().to_string_lossy();
                if !name.ends_with(".rs") || name == "cli.rs" || name == "testkit.rs" {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if line.contains("eprintln!(") && !line.trim_start().starts_with("//") {
                        stray.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(stray.is_empty(), "eprintln! in service code (use the Daemon's log or tracing): {stray:#?}");
}

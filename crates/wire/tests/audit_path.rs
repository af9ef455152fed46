//! Audit paths: positions follow the RFC 9162 walk, agree with a naive recursive reference
//! implementation of RFC 9162 §2.1.3.1 for every leaf of every tree up to 33 leaves, and lying
//! positions or lengths are rejected.

use tlog::{Hash, Sha3_256, TreeHasher};
use wire::{AuditStep, Error, InclusionProof, Side, audit_path, hash_hex, proof_from_audit_path};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| Sha3_256::hash_leaf(&i.to_be_bytes())).collect()
}

/// RFC 9162 §2.1.1 MTH over leaf hashes.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => Sha3_256::empty_root(),
        1 => d[0],
        n => {
            let k = split(n);
            Sha3_256::hash_children(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// Largest power of two smaller than n (n >= 2).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.1 PATH(m, D[n]) with the side of each sibling, leaf first.
fn path(m: usize, d: &[Hash]) -> Vec<(Hash, Side)> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = split(d.len());
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push((mth(&d[k..]), Side::Right));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push((mth(&d[..k]), Side::Left));
        p
    }
}

fn sides(steps: &[AuditStep]) -> Vec<Side> {
    steps.iter().map(|s| s.position).collect()
}

#[test]
fn positions_in_an_eight_leaf_tree() {
    use Side::{Left as L, Right as R};
    let expected: [[Side; 3]; 8] =
        [[R, R, R], [L, R, R], [R, L, R], [L, L, R], [R, R, L], [L, R, L], [R, L, L], [L, L, L]];
    let d = leaves(8);
    for (i, want) in expected.iter().enumerate() {
        let proof: Vec<Hash> = path(i, &d).into_iter().map(|(h, _)| h).collect();
        assert_eq!(sides(&audit_path(i as u64, 8, &proof)), want, "leaf {i}");
    }
}

#[test]
fn positions_skip_levels_on_the_right_edge_of_a_seven_leaf_tree() {
    use Side::{Left as L, Right as R};
    let d = leaves(7);
    for (i, want) in [(4usize, vec![R, R, L]), (5, vec![L, R, L]), (6, vec![L, L])] {
        let proof: Vec<Hash> = path(i, &d).into_iter().map(|(h, _)| h).collect();
        assert_eq!(sides(&audit_path(i as u64, 7, &proof)), want, "leaf {i}");
    }
}

#[test]
fn every_leaf_of_every_tree_up_to_33_matches_the_reference_and_verifies() {
    for n in 1..=33u64 {
        let d = leaves(n);
        let root = mth(&d);
        for m in 0..n {
            let reference = path(m as usize, &d);
            let proof: Vec<Hash> = reference.iter().map(|(h, _)| *h).collect();
            let steps = audit_path(m, n, &proof);
            let want: Vec<Side> = reference.iter().map(|(_, s)| *s).collect();
            assert_eq!(sides(&steps), want, "leaf {m} of {n}");
            assert_eq!(proof_from_audit_path(m, n, &steps).expect("parse"), proof);

            let p = InclusionProof::new(&d[m as usize], m, n, &proof, &root);
            p.verify().unwrap_or_else(|e| panic!("leaf {m} of {n}: {e}"));
            let json = serde_json::to_string(&p).expect("json");
            assert_eq!(serde_json::from_str::<InclusionProof>(&json).expect("parse"), p);
        }
    }
}

#[test]
fn a_step_with_the_wrong_position_is_rejected() {
    let d = leaves(8);
    let proof: Vec<Hash> = path(5, &d).into_iter().map(|(h, _)| h).collect();
    let mut steps = audit_path(5, 8, &proof);
    steps[1].position = Side::Left;
    let err = proof_from_audit_path(5, 8, &steps).expect_err("lying position");
    assert!(matches!(err, Error::AuditPosition { step: 1, expected: Side::Right, got: Side::Left }), "{err:?}");

    let p = InclusionProof { audit_path: steps, ..InclusionProof::new(&d[5], 5, 8, &proof, &mth(&d)) };
    assert!(matches!(p.verify(), Err(Error::AuditPosition { .. })));
}

#[test]
fn a_path_of_the_wrong_length_or_an_index_outside_the_tree_is_rejected() {
    let d = leaves(8);
    let proof: Vec<Hash> = path(3, &d).into_iter().map(|(h, _)| h).collect();
    let steps = audit_path(3, 8, &proof);
    assert!(matches!(proof_from_audit_path(3, 8, &steps[..2]), Err(Error::AuditPathLength { expected: 3, got: 2 })));
    let mut long = steps.clone();
    long.push(AuditStep { hash: hash_hex(&d[0]), position: Side::Left });
    assert!(matches!(proof_from_audit_path(3, 8, &long), Err(Error::AuditPathLength { expected: 3, got: 4 })));
    assert!(matches!(proof_from_audit_path(8, 8, &steps), Err(Error::Proof(_))));
    assert!(matches!(proof_from_audit_path(0, 0, &[]), Err(Error::Proof(_))));
    assert_eq!(proof_from_audit_path(0, 1, &[]).expect("single leaf"), Vec::<Hash>::new());
}

#[test]
fn a_wrong_root_reports_recomputed_and_claimed_roots() {
    let d = leaves(5);
    let proof: Vec<Hash> = path(2, &d).into_iter().map(|(h, _)| h).collect();
    let claimed = [0xc7u8; 32];
    let p = InclusionProof::new(&d[2], 2, 5, &proof, &claimed);
    let err = p.verify().expect_err("wrong root");
    let computed = hash_hex(&mth(&d));
    match &err {
        Error::RootMismatch { computed: c, claimed: cl } => {
            assert_eq!(c, &computed);
            assert_eq!(cl, &hash_hex(&claimed));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), format!("recomputed root {computed} \u{2260} claimed root {}", hash_hex(&claimed)));

    // A tampered sibling hash leads to a mismatch too.
    let mut q = InclusionProof::new(&d[2], 2, 5, &proof, &mth(&d));
    q.audit_path[0].hash = hash_hex(&[0u8; 32]);
    assert!(matches!(q.verify(), Err(Error::RootMismatch { .. })));
}

#[test]
fn audit_steps_serialize_as_hash_and_lowercase_position() {
    let step = AuditStep { hash: "8a0b".repeat(16), position: Side::Left };
    assert_eq!(
        serde_json::to_string(&step).expect("json"),
        format!(r#"{{"hash":"{}","position":"left"}}"#, "8a0b".repeat(16))
    );
    assert!(serde_json::from_str::<AuditStep>(r#"{"hash":"00","position":"LEFT"}"#).is_err());
    assert!(serde_json::from_str::<AuditStep>(r#"{"hash":"00","position":"left","x":1}"#).is_err());
}

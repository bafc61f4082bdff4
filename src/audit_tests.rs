//! Unit tests for `audit.rs`.

use super::*;

fn chain(n: u64) -> Vec<AuditRecord> {
    let mut prev = GENESIS.to_owned();
    (1..=n)
        .map(|seq| {
            let mut r = AuditRecord {
                seq,
                at_unix: 1_700_000_000 + seq as i64,
                kind: "create".into(),
                csr_name: format!("csr-{seq}"),
                actor: "system:node:n1".into(),
                resource_version: seq,
                prev_hash: prev.clone(),
                hash: String::new(),
                certificate_serial: None,
                certificate_sha256: None,
            };
            r.hash = record_hash(&r);
            prev = r.hash.clone();
            r
        })
        .collect()
}

fn lines(rs: &[AuditRecord]) -> String {
    rs.iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn intact_chain_verifies() {
    let rs = chain(5);
    assert_eq!(verify(&lines(&rs), None), Ok(5));
    assert_eq!(verify(&lines(&rs), Some(&rs[4].hash)), Ok(5));
}

#[test]
fn edit_is_detected() {
    let mut rs = chain(5);
    rs[2].actor = "admin".into();
    assert_eq!(
        verify(&lines(&rs), None),
        Err(AuditError::Edited { seq: 3 })
    );
    // Re-hashing the edited record breaks the next link instead.
    rs[2].hash = record_hash(&rs[2]);
    assert_eq!(
        verify(&lines(&rs), None),
        Err(AuditError::Broken { seq: 4 })
    );
}

#[test]
fn deletion_is_detected() {
    let mut rs = chain(5);
    rs.remove(1);
    assert!(matches!(
        verify(&lines(&rs), None),
        Err(AuditError::Sequence {
            found: 3,
            expected: 2,
            ..
        })
    ));
}

#[test]
fn reorder_is_detected() {
    let mut rs = chain(5);
    rs.swap(1, 2);
    assert!(matches!(
        verify(&lines(&rs), None),
        Err(AuditError::Sequence { .. })
    ));
}

#[test]
fn truncation_is_detected_against_the_logged_head() {
    let rs = chain(5);
    let head = rs[4].hash.clone();
    assert!(matches!(
        verify(&lines(&rs[..3]), Some(&head)),
        Err(AuditError::Truncated { .. })
    ));
}

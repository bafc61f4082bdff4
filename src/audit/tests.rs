//! Unit tests for `audit/mod.rs` (chain) and `audit/verify.rs` (checkpoints, with a software
//! P-256 key standing in for the token's audit key).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use der::Decode;

use super::checkpoint::LoggedCheckpoint;
use super::*;

fn chain(n: u64) -> Vec<AuditRecord> {
    let mut rs = Vec::new();
    for seq in 1..=n {
        push(&mut rs, seq, None);
    }
    rs
}

fn push(rs: &mut Vec<AuditRecord>, seq: u64, checkpoint: Option<Checkpoint>) {
    let mut r = AuditRecord::new(
        seq,
        1_700_000_000 + seq as i64,
        Kind::Create,
        &format!("csr-{seq}"),
        "system:node:n1",
    );
    r.resource_version = seq;
    r.prev_hash = rs.last().map_or(GENESIS.to_owned(), |p| p.hash.clone());
    if seq.is_multiple_of(2) {
        r.groups = Some(vec!["system:nodes".into()]);
        r.sans = Some(vec!["DNS:n1".into()]);
    }
    if checkpoint.is_some() {
        r.kind = Kind::Checkpoint;
        r.checkpoint = checkpoint;
    }
    r.hash = record_hash(&r);
    rs.push(r);
}

fn rehash_from(rs: &mut [AuditRecord], from: usize) {
    for i in from..rs.len() {
        if i > 0 {
            rs[i].prev_hash = rs[i - 1].hash.clone();
        }
        rs[i].hash = record_hash(&rs[i]);
    }
}

fn lines(rs: &[AuditRecord]) -> String {
    rs.iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

struct Key {
    pair: EcdsaKeyPair,
    public: crate::signer::PublicKey,
}

fn key() -> Key {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let der = pair.public_key().as_der().unwrap();
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(der.as_ref()).unwrap();
    let public = crate::signer::PublicKey::from_spki(spki).unwrap();
    Key { pair, public }
}

/// Appends a checkpoint of the current head, signed by `k`; returns its log line.
fn checkpoint(rs: &mut Vec<AuditRecord>, k: &Key) -> LoggedCheckpoint {
    let head = rs.last().unwrap().clone();
    let seq = head.seq + 1;
    let at = 1_700_000_000 + seq as i64;
    let msg = checkpoint_message(head.seq, &head.hash, at);
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let sig = hex::encode(k.pair.sign(&rng, msg.as_bytes()).unwrap().as_ref());
    let cp = Checkpoint {
        seq: head.seq,
        hash: head.hash.clone(),
        sig: sig.clone(),
    };
    push(rs, seq, Some(cp));
    LoggedCheckpoint {
        seq: head.seq,
        hash: head.hash,
        at_unix: at,
        sig,
    }
}

#[test]
fn intact_chain_verifies() {
    let rs = chain(5);
    assert_eq!(verify(&lines(&rs), None), Ok(5));
    assert_eq!(verify(&lines(&rs), Some(&rs[4].hash)), Ok(5));
}

#[test]
fn records_without_the_added_fields_keep_the_old_hash() {
    // The hash of a record written before the added fields existed (schema 2).
    let mut r = AuditRecord::new(1, 1_700_000_001, Kind::Create, "csr-1", "system:node:n1");
    r.resource_version = 1;
    let old_body = serde_json::json!([
        1,
        1_700_000_001,
        "create",
        "csr-1",
        "system:node:n1",
        1,
        GENESIS
    ]);
    let old = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        old_body.to_string().as_bytes(),
    ));
    assert_eq!(record_hash(&r), old);
    r.outcome = Some("pending".into());
    assert_ne!(record_hash(&r), old);
    // An old export line (no added keys) still parses.
    r.outcome = None;
    r.hash = old;
    let line = serde_json::to_string(&r).unwrap();
    assert!(!line.contains("outcome"));
    assert_eq!(verify(&line, None), Ok(1));
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
    // An added field edited (the SANs of record 2).
    let mut rs = chain(5);
    rs[1].sans = Some(vec!["DNS:evil".into()]);
    assert_eq!(
        verify(&lines(&rs), None),
        Err(AuditError::Edited { seq: 2 })
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

#[test]
fn signed_checkpoints_verify() {
    let k = key();
    let mut rs = chain(4);
    let l1 = checkpoint(&mut rs, &k);
    push(&mut rs, 6, None);
    let l2 = checkpoint(&mut rs, &k);
    let logged = [l1, l2];
    let opts = VerifyOptions {
        key: Some(&k.public),
        logged: &logged,
        ..VerifyOptions::default()
    };
    let s = verify_with(&lines(&rs), &opts).unwrap();
    assert_eq!(
        (s.records, s.checkpoints, s.signatures, s.logged),
        (7, 2, 2, 2)
    );
}

#[test]
fn truncation_past_the_last_checkpoint_is_detected_with_the_logged_copy() {
    let k = key();
    let mut rs = chain(4);
    let l1 = checkpoint(&mut rs, &k);
    push(&mut rs, 6, None);
    let l2 = checkpoint(&mut rs, &k);
    push(&mut rs, 8, None);
    let logged = [l1, l2.clone()];
    let opts = VerifyOptions {
        key: Some(&k.public),
        logged: &logged,
        ..VerifyOptions::default()
    };
    // Cut after the first checkpoint: the chain alone is fine, the logged copy is not.
    let cut = lines(&rs[..5]);
    assert_eq!(verify(&cut, None), Ok(5));
    assert_eq!(
        verify_with(&cut, &opts),
        Err(AuditError::MissingCheckpoint {
            covers: l2.seq,
            hash: l2.hash.clone()
        })
    );
    // Cutting just the checkpoint record off is caught too.
    assert!(matches!(
        verify_with(&lines(&rs[..6]), &opts),
        Err(AuditError::MissingCheckpoint { covers: 6, .. })
    ));
}

#[test]
fn forged_checkpoint_signature_is_detected() {
    let k = key();
    let other = key();
    let mut rs = chain(4);
    checkpoint(&mut rs, &k);
    push(&mut rs, 6, None);
    // A rewritten chain whose checkpoint is signed by another key: the chain verifies
    // (every hash recomputed), the signature does not.
    let mut forged = chain(4);
    checkpoint(&mut forged, &other);
    push(&mut forged, 6, None);
    assert_eq!(verify(&lines(&forged), None), Ok(6));
    let opts = VerifyOptions {
        key: Some(&k.public),
        ..VerifyOptions::default()
    };
    assert_eq!(
        verify_with(&lines(&forged), &opts),
        Err(AuditError::BadSignature { seq: 5 })
    );
    // A checkpoint edited to cover a different hash, every hash after it recomputed.
    let mut bent = rs.clone();
    bent[4].checkpoint.as_mut().unwrap().seq = 3;
    bent[4].checkpoint.as_mut().unwrap().hash = bent[2].hash.clone();
    rehash_from(&mut bent, 4);
    assert_eq!(
        verify_with(&lines(&bent), &opts),
        Err(AuditError::BadSignature { seq: 5 })
    );
    // A checkpoint naming a hash the chain does not have.
    let mut wrong = rs.clone();
    wrong[4].checkpoint.as_mut().unwrap().hash = GENESIS.to_owned();
    rehash_from(&mut wrong, 4);
    assert_eq!(
        verify(&lines(&wrong), None),
        Err(AuditError::CheckpointMismatch { seq: 5, covers: 4 })
    );
}

#[test]
fn a_removed_checkpoint_breaks_the_cadence() {
    let k = key();
    let cadence = Cadence { every: 2, slack: 2 };
    let mut rs = chain(4);
    checkpoint(&mut rs, &k);
    for seq in 6..=8 {
        push(&mut rs, seq, None);
    }
    checkpoint(&mut rs, &k);
    for seq in 10..=11 {
        push(&mut rs, seq, None);
    }
    let opts = VerifyOptions {
        key: Some(&k.public),
        cadence: Some(cadence),
        ..VerifyOptions::default()
    };
    verify_with(&lines(&rs), &opts).unwrap();
    // Record 10 (a CSR's) and the checkpoint before it removed, the chain re-hashed: the
    // signatures that are left verify, the cadence does not.
    let mut cut: Vec<AuditRecord> = rs
        .iter()
        .filter(|r| r.seq != 9 && r.seq != 10)
        .cloned()
        .collect();
    for (i, r) in cut.iter_mut().enumerate() {
        r.seq = i as u64 + 1;
    }
    rehash_from(&mut cut, 0);
    let without = VerifyOptions {
        cadence: None,
        ..opts
    };
    assert!(verify_with(&lines(&cut), &without).is_ok());
    assert_eq!(
        verify_with(&lines(&cut), &opts),
        Err(AuditError::CadenceBroken {
            from: 5,
            to: 9,
            counted: 5,
            allowed: 4
        })
    );
    // Without the key the cadence is not judged (the chain alone says nothing of it).
    let no_key = VerifyOptions { key: None, ..opts };
    assert!(verify_with(&lines(&cut), &no_key).is_ok());
    // Local-command records do not count (no checkpointer runs with them).
    for r in &mut cut[4..] {
        r.actor = "kubesigner-cli".to_owned();
    }
    rehash_from(&mut cut, 4);
    assert!(verify_with(&lines(&cut), &opts).is_ok());
}

/// The hash as first written: a `serde_json::Value` array printed with `to_string`. Records
/// already in stores were hashed this way, so [`record_hash`] must digest the same bytes.
fn value_form(r: &AuditRecord) -> String {
    let mut body = vec![
        serde_json::json!(r.seq),
        serde_json::json!(r.at_unix),
        serde_json::json!(r.kind),
        serde_json::json!(r.csr_name),
        serde_json::json!(r.actor),
        serde_json::json!(r.resource_version),
        serde_json::json!(r.prev_hash),
    ];
    if r.certificate_serial.is_some() || r.certificate_sha256.is_some() {
        body.push(serde_json::json!(r.certificate_serial));
        body.push(serde_json::json!(r.certificate_sha256));
    }
    if r.has_added_fields() {
        body.push(serde_json::json!([
            r.groups,
            r.request_id,
            r.subject,
            r.sans,
            r.serial,
            r.outcome,
            r.checkpoint
        ]));
    }
    serde_json::Value::Array(body).to_string()
}

mod hash_form {
    use proptest::prelude::*;

    use super::*;

    /// Text with what JSON must escape (quotes, backslashes, control characters) and non-ASCII.
    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-z0-9\"\\\\\u{0}-\u{1f}\u{7f}é🦀 :=,]{0,12}").unwrap()
    }

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(text())
    }

    fn opt_list() -> impl Strategy<Value = Option<Vec<String>>> {
        proptest::option::of(proptest::collection::vec(text(), 0..3))
    }

    prop_compose! {
        fn record()(
            seq in any::<u64>(), at in any::<i64>(), kind in 0..Kind::ALL.len(),
            name in text(), actor in text(), rv in any::<u64>(), prev in text(),
            cert in (opt_text(), opt_text()),
            groups in opt_list(), request_id in opt_text(), subject in opt_text(),
            sans in opt_list(), serial in opt_text(), outcome in opt_text(),
            checkpoint in proptest::option::of((any::<u64>(), text(), text())),
        ) -> AuditRecord {
            let mut r = AuditRecord::new(seq, at, Kind::ALL[kind], &name, &actor);
            r.resource_version = rv;
            r.prev_hash = prev;
            (r.certificate_serial, r.certificate_sha256) = cert;
            r.groups = groups;
            r.request_id = request_id;
            r.subject = subject;
            r.sans = sans;
            r.serial = serial;
            r.outcome = outcome;
            r.checkpoint = checkpoint.map(|(seq, hash, sig)| Checkpoint { seq, hash, sig });
            r
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn hash_text_equals_the_value_form(r in record()) {
            prop_assert_eq!(String::from_utf8(hashed_text(&r)).unwrap(), value_form(&r));
        }
    }
}

#[test]
fn a_checkpoint_hashes_with_its_keys_sorted() {
    // The one object in the hashed text: `Value` sorts its keys, so hash < seq < sig.
    let mut r = AuditRecord::new(9, 1_700_000_009, Kind::Checkpoint, "", "kubesigner");
    r.checkpoint = Some(Checkpoint {
        seq: 8,
        hash: "ab".into(),
        sig: "cd".into(),
    });
    let text = String::from_utf8(hashed_text(&r)).unwrap();
    assert!(
        text.ends_with(r#"[null,null,null,null,null,null,{"hash":"ab","seq":8,"sig":"cd"}]]"#),
        "{text}"
    );
    assert_eq!(text, value_form(&r));
}

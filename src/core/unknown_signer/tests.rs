//! Unit tests for `unknown_signer.rs`.

use super::*;

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

#[test]
fn message_names_the_signer() {
    assert_eq!(
        unknown_signer_message("example.com/foo"),
        "this appliance does not sign for signer name \"example.com/foo\""
    );
}

#[test]
fn message_escapes_and_bounds_hostile_names() {
    let m = unknown_signer_message("a/b\n\u{1b}[31mred");
    assert!(!m.contains('\n') && !m.contains('\u{1b}'), "{m}");
    let long = "é".repeat(1000);
    let m = unknown_signer_message(&long);
    assert!(m.len() < MAX_SIGNER_NAME_LEN + 60, "{}", m.len());
}

#[test]
fn condition_is_failed_true_with_reason_and_times() {
    let c = unknown_signer_condition("example.com/foo", now());
    assert_eq!(c.type_, "Failed");
    assert_eq!(c.status, "True");
    assert_eq!(c.reason.as_deref(), Some("UnknownSigner"));
    assert_eq!(c.last_update_time, Some(Time(now())));
    assert_eq!(c.last_transition_time, Some(Time(now())));
    // It serializes as the Kubernetes JSON the clients read.
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["lastUpdateTime"], "2026-03-01T12:00:00Z");
    assert_eq!(json["type"], "Failed");
}

#[test]
fn mark_appends_once() {
    let mut csr = CertificateSigningRequest::default();
    csr.spec.signer_name = "example.com/foo".into();
    assert_eq!(mark_unknown_signer(&mut csr, now()), Marked::Added);
    assert_eq!(mark_unknown_signer(&mut csr, now()), Marked::AlreadyFailed);
    let conds = csr.status.unwrap().conditions.unwrap();
    assert_eq!(conds.len(), 1);
    assert!(
        conds[0]
            .message
            .as_deref()
            .unwrap()
            .contains("example.com/foo")
    );
}

//! The first bootstrap address: recorded once for an unknown node, never overwritten, not for
//! a known node, cleared by `forget`, kept across reopen.

use std::net::IpAddr;

use super::super::{CsrIndex, IssuedRecord, Store};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn recorded_once_never_overwritten_forget_clears() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.first_bootstrap_address("n1").unwrap(), None);
    assert!(
        s.record_first_bootstrap_address("n1", ip("10.0.0.1"))
            .unwrap()
    );
    assert!(
        !s.record_first_bootstrap_address("n1", ip("10.6.6.6"))
            .unwrap()
    );
    assert_eq!(
        s.first_bootstrap_address("n1").unwrap(),
        Some(ip("10.0.0.1"))
    );
    assert_eq!(
        s.node_state("n1", 0).unwrap().first_bootstrap_address,
        Some(ip("10.0.0.1"))
    );
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(
        s.first_bootstrap_address("n1").unwrap(),
        Some(ip("10.0.0.1"))
    );
    assert!(s.forget_node("n1").unwrap());
    assert_eq!(s.first_bootstrap_address("n1").unwrap(), None);
    // Forgotten: the next first bootstrap records again.
    assert!(s.record_first_bootstrap_address("n1", ip("::1")).unwrap());
    assert_eq!(s.first_bootstrap_address("n1").unwrap(), Some(ip("::1")));
}

#[test]
fn not_recorded_for_a_known_node() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.set_node_disabled("disabled", false).unwrap();
    assert!(
        !s.record_first_bootstrap_address("disabled", ip("10.0.0.2"))
            .unwrap()
    );
    let mut c = k8s_openapi::api::certificates::v1::CertificateSigningRequest::default();
    c.metadata.name = Some("a".to_owned());
    c.metadata.uid = Some("uid-a".to_owned());
    s.create(c, &CsrIndex::default(), "t").unwrap();
    s.update("a", None, "kubesigner", crate::audit::Kind::Issue, |_| {
        Ok::<_, ()>(Some(IssuedRecord {
            node_name: "issued".to_owned(),
            serial_hex: "01ab".to_owned(),
            not_after_unix: 2_000,
            issued_unix: 1_000,
        }))
    })
    .unwrap();
    assert!(
        !s.record_first_bootstrap_address("issued", ip("10.0.0.3"))
            .unwrap()
    );
    assert_eq!(s.first_bootstrap_address("issued").unwrap(), None);
}

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestStatus,
};

use super::*;

/// A CERTIFICATE block whose DER is cut short (not a certificate). Valid certificates are
/// written in tests/ctl/external_kube_rs.rs.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBdDCCARmgAwIBAgIUe3Yk9QwZ0m3Jm2yQ2m1YwJ2x6gUwCgYIKoZIzj0EAwIw
DzENMAsGA1UEAwwEdGVzdDAeFw0yNjAxMDEwMDAwMDBaFw0yNzAxMDEwMDAwMDBa
MA8xDTALBgNVBAMMBHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ7Y0YH
-----END CERTIFICATE-----
";

fn csr(conditions: &[&str], cert: Option<&[u8]>) -> CertificateSigningRequest {
    let conditions = conditions
        .iter()
        .map(|t| {
            crate::conditions::condition(t.parse().unwrap(), "R", "m", &Time(Default::default()))
        })
        .collect();
    CertificateSigningRequest {
        metadata: Default::default(),
        spec: Default::default(),
        status: Some(CertificateSigningRequestStatus {
            conditions: Some(conditions),
            certificate: cert.map(|c| ByteString(c.to_vec())),
        }),
    }
}

fn now() -> Time {
    Time(Default::default())
}

#[test]
fn garbage_and_other_pem_blocks_are_refused() {
    assert!(parse_certificate("x", b"").is_err());
    assert!(parse_certificate("x", b"hello").is_err());
    assert!(
        parse_certificate("x", CERT.as_bytes()).is_err(),
        "truncated DER"
    );
    let other = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert!(parse_certificate("x", other.as_bytes()).is_err());
}

#[test]
fn certificate_only_on_approved_and_never_changed() {
    let body = csr(&["Approved"], Some(b"not pem"));
    let mut pending = csr(&[], None);
    assert!(apply_status(&mut pending, &body, &now()).is_err());
    let mut denied = csr(&["Denied"], None);
    assert!(apply_status(&mut denied, &csr(&["Denied"], Some(b"x")), &now()).is_err());
    // A stored certificate cannot change or be cleared; the same value is a no-op.
    let mut issued = csr(&["Approved"], Some(b"A"));
    assert!(apply_status(&mut issued, &csr(&["Approved"], Some(b"B")), &now()).is_err());
    assert!(apply_status(&mut issued, &csr(&["Approved"], None), &now()).is_err());
    assert_eq!(
        apply_status(&mut issued, &csr(&["Approved"], Some(b"A")), &now()).unwrap(),
        None
    );
    // Approved but the value is not PEM: refused as invalid.
    let mut approved = csr(&["Approved"], None);
    assert!(apply_status(&mut approved, &body, &now()).is_err());
    assert!(new_certificate(&approved, &body).is_some());
    assert!(new_certificate(&issued, &body).is_none());
}

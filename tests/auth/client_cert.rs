//! Client-certificate identity mapping, with certificates made by the real `openssl`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::auth;

use std::time::SystemTime;

use auth::Pki;
use kubesigner::authn::{
    AuthMethod, Authenticator, AuthnFailure, AuthnOutcome, BootstrapTokens, CREDENTIAL_ID_KEY,
    StaticTokens,
};
use kubesigner::tls::load_certs;

fn authenticator(dir: &tempfile::TempDir) -> Authenticator {
    Authenticator::from_parts(
        StaticTokens::empty(),
        BootstrapTokens::open(&dir.path().join("kubesigner.db")).unwrap(),
    )
}

fn outcome(pki: &Pki, name: &str, header: Option<&[u8]>) -> AuthnOutcome {
    let dir = tempfile::tempdir().unwrap();
    let chain = load_certs(&pki.path(&format!("{name}.crt"))).unwrap();
    authenticator(&dir).authenticate(Some(&chain), header, SystemTime::now())
}

#[test]
fn leaf_maps_to_cn_and_organizations() {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "node",
        "/O=system:nodes/CN=system:node:n1",
        "clientAuth",
        None,
    );
    let AuthnOutcome::Authenticated(id) = outcome(&pki, "node", None) else {
        panic!("not authenticated");
    };
    assert_eq!(id.user, "system:node:n1");
    assert_eq!(id.uid, "");
    assert_eq!(id.groups, ["system:nodes", "system:authenticated"]);
    assert_eq!(id.method, AuthMethod::ClientCertificate);
    let cred = &id.extra[CREDENTIAL_ID_KEY];
    assert_eq!(cred.len(), 1);
    assert!(
        cred[0].starts_with("X509SHA256=") && cred[0].len() == 11 + 64,
        "{cred:?}"
    );
}

#[test]
fn serving_only_certificate_is_rejected_even_past_tls() {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "serving",
        "/O=system:nodes/CN=system:node:n1",
        "serverAuth",
        Some("DNS:n1"),
    );
    assert_eq!(
        outcome(&pki, "serving", None),
        AuthnOutcome::Rejected(AuthnFailure::NotClientAuth)
    );
}

#[test]
fn certificate_without_eku_counts_as_any() {
    let pki = Pki::new();
    pki.leaf("ca", "plain", "/CN=someone", "", None);
    assert!(matches!(outcome(&pki, "plain", None),
        AuthnOutcome::Authenticated(id) if id.user == "someone"));
}

#[test]
fn certificate_without_cn_is_not_used() {
    let pki = Pki::new();
    pki.leaf("ca", "nocn", "/O=system:masters", "clientAuth", None);
    assert_eq!(outcome(&pki, "nocn", None), AuthnOutcome::Anonymous);
    assert_eq!(
        outcome(&pki, "nocn", Some(b"Bearer nope")),
        AuthnOutcome::Rejected(AuthnFailure::UnknownToken)
    );
}

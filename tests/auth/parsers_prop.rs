//! Property tests for the untrusted-input parsers of the auth layer: no input panics, random
//! input never authenticates, and well-formed input round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::SystemTime;

use kubesigner::authn::{
    Authenticator, AuthnOutcome, BootstrapToken, BootstrapTokens, StaticTokens,
};
use proptest::prelude::*;
use rustls::pki_types::CertificateDer;
use secrecy::ExposeSecret;

const SEED: &str =
    "02b50b05283e98dd0fd71db496ef01e8,kubelet-bootstrap,10001,\"system:kubelet-bootstrap\"\n";

fn authenticator() -> (tempfile::TempDir, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    let st = StaticTokens::parse(SEED.as_bytes(), Path::new("t.csv")).unwrap();
    let bt = BootstrapTokens::open(&dir.path().join("kubesigner.db")).unwrap();
    (dir, Authenticator::from_parts(st, bt))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: crate::support::regressions::beside_source(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn token_file_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = StaticTokens::parse(&bytes, Path::new("fuzz.csv"));
    }

    #[test]
    fn csv_text_parser_never_panics(text in "[a-z0-9,\"\\r\\n ]{0,200}") {
        let _ = StaticTokens::parse(text.as_bytes(), Path::new("fuzz.csv"));
    }

    #[test]
    fn bootstrap_token_round_trips(id in "[a-z0-9]{6}", secret in "[a-z0-9]{16}") {
        let text = format!("{id}.{secret}");
        let t = BootstrapToken::parse(&text).unwrap();
        prop_assert_eq!(t.id.as_str(), id.as_str());
        let whole = t.to_secret_string();
        prop_assert_eq!(whole.expose_secret(), text.as_str());
    }

    #[test]
    fn random_headers_and_certificates_never_authenticate(
        header in proptest::collection::vec(any::<u8>(), 0..300),
        cert in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    ) {
        let (_dir, a) = authenticator();
        let chain: Option<Vec<CertificateDer<'static>>> = cert.map(|c| vec![CertificateDer::from(c)]);
        let out = a.authenticate(chain.as_deref(), Some(&header), SystemTime::now());
        prop_assert!(!matches!(out, AuthnOutcome::Authenticated(_)), "{:?}", out);
    }

    #[test]
    fn bearer_with_random_token_is_rejected(token in "[!-~]{1,80}") {
        prop_assume!(token != "02b50b05283e98dd0fd71db496ef01e8");
        let (_dir, a) = authenticator();
        let out = a.authenticate(None, Some(format!("Bearer {token}").as_bytes()), SystemTime::now());
        prop_assert!(matches!(out, AuthnOutcome::Rejected(_)), "{:?}", out);
    }
}

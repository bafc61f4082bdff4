//! Property tests: CSR parsing and validation never panic, whatever the bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{issue_csr, issue_soft_key};

use std::sync::OnceLock;

use kubesigner::config::IssuanceConfig;
use kubesigner::issue::{self, CsrInput, Requester};
use proptest::prelude::*;

fn valid_der() -> &'static Vec<u8> {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| {
        let key = issue_soft_key::SoftKey::generate(issue_soft_key::SoftAlg::P256);
        let pem = issue_csr::csr(
            &key,
            "CN=system:node:node1,O=system:nodes",
            &[
                issue_csr::TSan::Dns("node1"),
                issue_csr::TSan::Ip("10.0.0.1"),
            ],
            &[],
        );
        der::pem::decode_vec(&pem).unwrap().1
    })
}

fn pem_of(der: &[u8]) -> Vec<u8> {
    der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, der)
        .unwrap()
        .into_bytes()
}

fn input(pem: Vec<u8>, signer: String, usages: Vec<String>, exp: Option<i64>) -> CsrInput {
    CsrInput {
        request_pem: pem,
        signer_name: signer,
        usages,
        expiration_seconds: exp,
        requester: Requester::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: crate::support::regressions::beside_source(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = issue::parse_csr(&bytes);
        let _ = issue::parse_csr(&pem_of(&bytes));
    }

    #[test]
    fn mutated_valid_csr_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut der = valid_der().clone();
        for (i, b) in edits {
            let at = i.index(der.len());
            der[at] = b;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        let _ = issue::parse_csr(&pem_of(&der));
    }

    #[test]
    fn validation_never_panics(
        signer in prop_oneof![Just(issue::names::KUBELET_CLIENT.to_owned()), Just(issue::names::KUBELET_SERVING.to_owned()), ".{0,80}"],
        usages in proptest::collection::vec(prop_oneof![Just("digital signature".to_owned()), Just("server auth".to_owned()), Just("client auth".to_owned()), ".{0,20}"], 0..30),
        exp in proptest::option::of(any::<i64>()),
        flip in any::<prop::sample::Index>(),
    ) {
        let mut der = valid_der().clone();
        let at = flip.index(der.len());
        der[at] ^= 0x80;
        let cfg = IssuanceConfig::default();
        let _ = issue::validate_input(&input(pem_of(valid_der()), signer.clone(), usages.clone(), exp), &cfg);
        let _ = issue::validate_input(&input(pem_of(&der), signer, usages, exp), &cfg);
    }
}

#[test]
fn the_unmutated_csr_is_valid() {
    let cfg = IssuanceConfig::default();
    let v = issue::validate_input(
        &input(
            pem_of(valid_der()),
            issue::names::KUBELET_SERVING.to_owned(),
            vec!["digital signature".into(), "server auth".into()],
            None,
        ),
        &cfg,
    );
    assert!(v.is_ok(), "{v:?}");
}

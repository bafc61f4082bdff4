//! Fuzz target: CSR parsing (PEM → PKCS#10 → key rules → proof of possession), the audit
//! description of a request (`CsrRequest::describe`), and the full validation with the default
//! config. Must never panic.
//!
//! Run: `cargo +nightly fuzz run csr_parse -- -max_total_time=60`

#![no_main]

use kubesigner::config::IssuanceConfig;
use kubesigner::issue::{self, CsrInput, Requester};
use base64::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = issue::parse_csr(data);
    // The audit record's subject/SAN description: no signature check, so it reaches the
    // extension parsers with any request.
    let _ = issue::CsrRequest::parse(data).map(|r| r.describe());
    // Also as DER wrapped in PEM, so the fuzzer reaches the ASN.1 parser directly.
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    let input = CsrInput {
        request_pem: pem.into_bytes(),
        signer_name: issue::names::KUBELET_SERVING.to_owned(),
        usages: vec!["digital signature".to_owned(), "server auth".to_owned()],
        expiration_seconds: None,
        requester: Requester::default(),
    };
    let _ = issue::CsrRequest::parse(&input.request_pem).map(|r| r.describe());
    let _ = issue::validate_input(&input, &IssuanceConfig::default());
});

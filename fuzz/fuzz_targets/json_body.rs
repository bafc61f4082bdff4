//! Fuzz target: the JSON CertificateSigningRequest body decoder (`api::codec::request::decode_csr`),
//! with each `fieldValidation` mode. Must never panic (deep nesting, odd types, huge numbers).
//!
//! Run: `cargo +nightly fuzz run json_body -- -max_total_time=60`

#![no_main]

use kubesigner::api::codec::request::{FieldValidation, decode_csr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for mode in [FieldValidation::Strict, FieldValidation::Warn, FieldValidation::Ignore] {
        let _ = decode_csr(data, mode);
    }
});

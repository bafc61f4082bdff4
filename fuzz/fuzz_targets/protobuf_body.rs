//! Fuzz target: Kubernetes protobuf CSR bodies (`k8s\0` + `runtime.Unknown` + CSR message).
//! Must never panic; whatever decodes must re-encode to the same object.
//!
//! Run: `cargo +nightly fuzz run protobuf_body -- -max_total_time=60`
//! (needs a `[[bin]] name = "protobuf_body"` entry in fuzz/Cargo.toml).

#![no_main]

use kubesigner::api::codec::protobuf::{decode_csr, encode_csr, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check(data);
    // Also behind the magic, so the fuzzer reaches the envelope decoder at once.
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(data);
    check(&body);
});

fn check(body: &[u8]) {
    if let Ok(csr) = decode_csr(body) {
        let again = decode_csr(&encode_csr(&csr));
        assert_eq!(again.as_ref(), Ok(&csr), "protobuf round trip changed the object");
    }
}

//! Fuzz target: the RFC 7512 PKCS#11 URI parser (`signer::Pkcs11Uri::parse`), from both origins.
//! Must never panic; the command line must never accept `pin-value`.
//!
//! Run: `cargo +nightly fuzz run pkcs11_uri -- -max_total_time=60`

#![no_main]

use kubesigner::signer::{Pkcs11Uri, UriOrigin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = Pkcs11Uri::parse(text, UriOrigin::ConfigFile) {
        let _ = uri.key_selector();
    }
    if let Ok(uri) = Pkcs11Uri::parse(text, UriOrigin::CommandLine) {
        let _ = uri.key_selector();
    }
});

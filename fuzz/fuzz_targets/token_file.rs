//! Fuzz target: the static token file parser (`authn::StaticTokens::parse`). Must never panic,
//! whatever the bytes (CSV quoting, CR/LF, duplicates, oversize files).
//!
//! Run: `cargo +nightly fuzz run token_file -- -max_total_time=60`

#![no_main]

use std::path::Path;

use kubesigner::authn::StaticTokens;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tokens) = StaticTokens::parse(data, Path::new("fuzz.csv")) {
        // Whatever parsed must be usable, and holds at most one token per line.
        let _ = tokens.lookup(data);
        assert!(tokens.len() <= data.split(|&b| b == b'\n').count());
    }
});

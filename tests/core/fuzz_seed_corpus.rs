//! Replays the committed fuzz seed corpus (`fuzz/corpus-seed/<target>/`) through the same
//! functions the cargo-fuzz targets in `fuzz/fuzz_targets/` call, on the stable toolchain, so
//! CI catches a regression on every seed (and every crash input added there later) without
//! nightly or libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::Engine;
use kubesigner::api::codec::protobuf;
use kubesigner::api::codec::request::{FieldValidation, decode_csr};
use kubesigner::authn::StaticTokens;
use kubesigner::config::IssuanceConfig;
use kubesigner::issue::{self, CsrInput, Requester};
use kubesigner::signer::{Pkcs11Uri, UriOrigin};

/// Every seed file of one target; fails when the directory is empty (a lost corpus).
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus-seed")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn fuzz_seeds_csr_parse() {
    let mut parsed = 0;
    let mut described = 0;
    for (path, data) in seeds("csr_parse") {
        parsed += usize::from(issue::parse_csr(&data).is_ok());
        described += usize::from(
            issue::CsrRequest::parse(&data)
                .map(|r| r.describe())
                .is_ok(),
        );
        let pem = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            base64::engine::general_purpose::STANDARD.encode(&data)
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
        eprintln!("csr_parse seed ok: {}", path.display());
    }
    assert!(parsed >= 2, "the PEM seeds must parse (parsed {parsed})");
    assert!(
        described >= parsed,
        "the audit description reads what parses"
    );
}

#[test]
fn fuzz_seeds_json_body() {
    let mut decoded = 0;
    for (_, data) in seeds("json_body") {
        for mode in [
            FieldValidation::Strict,
            FieldValidation::Warn,
            FieldValidation::Ignore,
        ] {
            decoded += usize::from(decode_csr(&data, mode).is_ok());
        }
    }
    assert!(
        decoded >= 3,
        "the valid JSON seed must decode in every mode"
    );
}

#[test]
fn fuzz_seeds_protobuf_body() {
    let mut decoded = 0;
    for (path, data) in seeds("protobuf_body") {
        let mut behind_magic = protobuf::MAGIC.to_vec();
        behind_magic.extend_from_slice(&data);
        for body in [data.as_slice(), behind_magic.as_slice()] {
            if let Ok(csr) = protobuf::decode_csr(body) {
                decoded += 1;
                let again = protobuf::decode_csr(&protobuf::encode_csr(&csr));
                assert_eq!(again.as_ref(), Ok(&csr), "{}: round trip", path.display());
            }
        }
    }
    assert!(decoded >= 1, "the protobuf seed must decode");
}

#[test]
fn fuzz_seeds_token_file() {
    let mut ok = 0;
    for (_, data) in seeds("token_file") {
        if let Ok(tokens) = StaticTokens::parse(&data, Path::new("seed.csv")) {
            ok += 1;
            let _ = tokens.lookup(&data);
            assert!(tokens.len() <= data.split(|&b| b == b'\n').count());
        }
    }
    assert!(ok >= 1, "the basic token file must parse");
}

#[test]
fn fuzz_seeds_pkcs11_uri() {
    let mut ok = 0;
    for (path, data) in seeds("pkcs11_uri") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        for origin in [UriOrigin::ConfigFile, UriOrigin::CommandLine] {
            if let Ok(uri) = Pkcs11Uri::parse(text, origin) {
                ok += 1;
                let _ = uri.key_selector();
            }
        }
        eprintln!("pkcs11_uri seed ok: {}", path.display());
    }
    assert!(ok >= 2, "the well-formed URIs must parse");
}

/// Writes the protobuf seed from the JSON seed (run by hand with `--ignored` after a schema
/// change): the bytes client-go would send for the same object.
#[test]
#[ignore = "regenerates fuzz/corpus-seed/protobuf_body"]
fn regenerate_protobuf_seed() {
    let json = seeds("json_body")
        .into_iter()
        .find(|(p, _)| p.ends_with("kubelet-client.json"))
        .unwrap()
        .1;
    let csr = decode_csr(&json, FieldValidation::Strict).unwrap().csr;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus-seed/protobuf_body");
    std::fs::write(dir.join("kubelet-client.pb"), protobuf::encode_csr(&csr)).unwrap();
}

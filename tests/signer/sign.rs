//! Sign + verify for every algorithm against real SoftHSM (fresh token per test), verified
//! by the signer (aws-lc-rs) and independently by openssl; key attributes read back after
//! keygen (tests/signer/matrix.rs, on SoftHSM and a TPM).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::signer_support;

use std::os::unix::fs::PermissionsExt;

use der::EncodePem;
use kubesigner::signer::{
    Algorithm, Pkcs11Uri, Settings, SignKey, SignerError, TokenSigner, UriOrigin,
};
use secrecy::SecretString;
use signer_support::TokenEnv;

fn sign_and_verify(test: &str, algorithm: &str, expected: Algorithm, digest: &str) {
    if let Some(tok) = TokenEnv::child(test) {
        let uri = Pkcs11Uri::parse(&tok.uri("ca"), UriOrigin::CommandLine).unwrap();
        let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
        assert_eq!(signer.algorithm(), expected);
        assert_eq!(signer.signature_algorithm(), expected.signature_algorithm());
        let msg = b"tbsCertificate bytes stand-in".to_vec();
        let sig = signer.sign(&msg).unwrap();
        let pem = signer
            .public_key()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap();
        assert!(
            signer_support::tools::openssl_verify_signature(&tok.dir, &pem, digest, &msg, &sig),
            "openssl verify"
        );
        // A changed message must not verify (the check can fail).
        assert!(!signer_support::tools::openssl_verify_signature(
            &tok.dir, &pem, digest, b"other", &sig
        ));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "sign");
    tok.keygen("ca", algorithm);
    tok.run_child(module_path!(), test, &[]);
}

#[test]
fn sign_verify_ecdsa_p256() {
    sign_and_verify(
        "sign_verify_ecdsa_p256",
        "ecdsa-p256",
        Algorithm::EcdsaP256,
        "-sha256",
    );
}

#[test]
fn sign_verify_ecdsa_p384() {
    sign_and_verify(
        "sign_verify_ecdsa_p384",
        "ecdsa-p384",
        Algorithm::EcdsaP384,
        "-sha384",
    );
}

#[test]
fn sign_verify_rsa_2048() {
    sign_and_verify(
        "sign_verify_rsa_2048",
        "rsa-2048",
        Algorithm::Rsa2048,
        "-sha256",
    );
}

#[test]
fn sign_verify_rsa_3072() {
    sign_and_verify(
        "sign_verify_rsa_3072",
        "rsa-3072",
        Algorithm::Rsa3072,
        "-sha256",
    );
}

#[test]
fn sign_verify_rsa_4096() {
    sign_and_verify(
        "sign_verify_rsa_4096",
        "rsa-4096",
        Algorithm::Rsa4096,
        "-sha256",
    );
}

/// keygen refuses an existing id or label (exit 64, one line), and the first key survives.
#[test]
fn keygen_refuses_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "overwrite");
    let first = tok.keygen("ca", "ecdsa-p256");
    let out = tok.kubesigner(&[
        "hsm",
        "keygen",
        "--uri",
        &tok.uri("ca"),
        "--algorithm",
        "ecdsa-p384",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
    let id = String::from_utf8(first.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("id: ").map(str::to_owned))
        .unwrap();
    let out = tok.kubesigner(&[
        "hsm",
        "keygen",
        "--uri",
        &tok.uri("other"),
        "--algorithm",
        "ecdsa-p256",
        "--id",
        &id,
    ]);
    assert_eq!(out.status.code(), Some(64));
    let check = tok.kubesigner(&["hsm", "check", "--uri", &tok.uri("ca")]);
    assert!(check.status.success());
    assert!(
        String::from_utf8(check.stdout)
            .unwrap()
            .contains("algorithm: ecdsa-p256")
    );
}

/// `sign_async` runs on a blocking thread and returns a verified signature.
#[test]
fn sign_async_from_tokio() {
    if let Some(tok) = TokenEnv::child("sign_async_from_tokio") {
        let uri = Pkcs11Uri::parse(&tok.uri("ca"), UriOrigin::ConfigFile).unwrap();
        let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let sig = rt.block_on(signer.sign_async(b"async".to_vec())).unwrap();
        assert!(!sig.is_empty());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "async");
    tok.keygen("ca", "ecdsa-p256");
    tok.run_child(module_path!(), "sign_async_from_tokio", &[]);
}

/// Opening a URI whose key does not exist fails with a configuration error (exit 64).
#[test]
fn missing_key_is_a_config_error() {
    if let Some(tok) = TokenEnv::child("missing_key_is_a_config_error") {
        let uri = Pkcs11Uri::parse(&tok.uri("nope"), UriOrigin::CommandLine).unwrap();
        let err = TokenSigner::open(&uri, Settings::default()).unwrap_err();
        assert!(matches!(err, SignerError::KeyNotFound { .. }), "{err}");
        assert_eq!(err.exit_code(), 64);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "missing");
    tok.run_child(module_path!(), "missing_key_is_a_config_error", &[]);
}

/// `init_token` (for the dev mode) initialises a free slot and its user PIN without shelling
/// out; a key generated in the new token signs with the user PIN it set.
#[test]
fn init_token_then_keygen_and_sign() {
    const TEST: &str = "init_token_then_keygen_and_sign";
    if let Some(tok) = TokenEnv::child(TEST) {
        let user = "user-pin-0123456789abcdef";
        let so = SecretString::from("so-pin-0123456789abcdef");
        kubesigner::signer::init_token(
            std::path::Path::new(&tok.module),
            &tok.label,
            &so,
            &SecretString::from(user),
        )
        .unwrap();
        std::fs::write(&tok.pin_file, user).unwrap();
        std::fs::set_permissions(&tok.pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let uri = Pkcs11Uri::parse(&tok.uri("ca"), UriOrigin::CommandLine).unwrap();
        let key = kubesigner::signer::keygen(&uri, Algorithm::EcdsaP256, None, None).unwrap();
        assert_eq!(key.label, "ca");
        let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
        assert_eq!(signer.public_key(), &key.public.spki);
        signer.sign(b"dev").unwrap();
        return;
    }
    // A SoftHSM configuration with an empty token directory: only a free slot.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tokens")).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let module =
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/hsm/find-module"))
            .output()
            .unwrap();
    let tok = TokenEnv {
        dir: dir.path().to_owned(),
        conf: conf.display().to_string(),
        module: String::from_utf8(module.stdout).unwrap().trim().to_owned(),
        label: "kubesigner-dev".into(),
        pin_file: dir.path().join("pin"),
    };
    tok.run_child(module_path!(), TEST, &[]);
}

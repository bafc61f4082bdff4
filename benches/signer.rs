//! Signer micro-benchmark (not a test): P-256 signatures per second on SoftHSM through the
//! `TokenSigner` pool (sign + verify, 1 and 2 threads) against raw cryptoki calls on the same
//! key (software SHA-256 + `C_Sign` with a cached handle, 1 and 2 sessions).
//!
//!     cargo bench --bench signer            (release profile; makes a throw-away token)
//!
//! The module reads SOFTHSM2_CONF when it loads, so the benchmark creates the token, then runs
//! itself as a child with the variable set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use kubesigner::signer::{Algorithm, Pkcs11Uri, Settings, SignKey, TokenSigner, UriOrigin, keygen};
use secrecy::SecretString;

/// Signatures per thread per measurement.
const N: usize = 4000;
const CHILD: &str = "KUBESIGNER_BENCH_CHILD";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm/softhsm-token");
    let out = Command::new(script)
        .arg(dir.path())
        .arg("bench")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD, "1").env("BENCH_DIR", dir.path());
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            cmd.env(k, v);
        }
    }
    assert!(cmd.status().unwrap().success());
}

fn report(name: &str, threads: usize, elapsed: Duration) {
    let total = (N * threads) as f64;
    let per_s = total / elapsed.as_secs_f64();
    let us = elapsed.as_secs_f64() * 1e6 / (N as f64);
    println!(
        "{name:<44} {threads} thread(s): {per_s:>8.0} signatures/s  ({us:.1} µs per signature per thread)"
    );
}

fn child() {
    let module = std::env::var("KUBESIGNER_PKCS11_MODULE").unwrap();
    let pin_file = std::env::var("KUBESIGNER_PIN_FILE").unwrap();
    let text = format!(
        "pkcs11:token=bench;object=ca?module-path={module}&pin-source=file:{pin_file}&max-sessions=2"
    );
    let uri = Pkcs11Uri::parse(&text, UriOrigin::CommandLine).unwrap();
    keygen(&uri, Algorithm::EcdsaP256, None, None).unwrap();
    let pin = std::fs::read_to_string(&pin_file).unwrap();
    raw(&module, &pin, 1);
    raw(&module, &pin, 2);
    let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
    for threads in [1, 2] {
        let start = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let s = Arc::clone(&signer);
                std::thread::spawn(move || {
                    for i in 0..N {
                        s.sign(format!("tbs {t} {i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        report(
            "TokenSigner pool (sign + aws-lc-rs verify)",
            threads,
            start.elapsed(),
        );
    }
    let msg = b"tbs".to_vec();
    let sig = signer.sign(&msg).unwrap();
    let point = signer.public_key().subject_public_key.raw_bytes().to_vec();
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        &point,
    );
    let parsed = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        &point,
    )
    .unwrap();
    for threads in [1, 2] {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..N {
                        key.verify(&msg, &sig).unwrap();
                    }
                });
            }
        });
        report(
            "aws-lc-rs verify (UnparsedPublicKey)",
            threads,
            start.elapsed(),
        );
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..N {
                        parsed.verify_sig(&msg, &sig).unwrap();
                    }
                });
            }
        });
        report(
            "aws-lc-rs verify (shared ParsedPublicKey)",
            threads,
            start.elapsed(),
        );
    }
}

/// Raw cryptoki: one session per thread, handle found once, SHA-256 in software, `C_Sign`.
fn raw(module: &str, pin: &str, threads: usize) {
    let ctx = Pkcs11::new(module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx.get_slots_with_token().unwrap()[0];
    let login = ctx.open_ro_session(slot).unwrap();
    login
        .login(UserType::User, Some(&SecretString::from(pin)))
        .unwrap();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let ctx = ctx.clone();
            scope.spawn(move || {
                let session = ctx.open_ro_session(slot).unwrap();
                let key = session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Label(b"ca".to_vec()),
                    ])
                    .unwrap()[0];
                for i in 0..N {
                    let d = aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA256,
                        format!("tbs {t} {i}").as_bytes(),
                    );
                    session.sign(&Mechanism::Ecdsa, key, d.as_ref()).unwrap();
                }
            });
        }
    });
    report(
        "raw cryptoki (SHA-256 + C_Sign, no verify)",
        threads,
        start.elapsed(),
    );
    drop(login);
    ctx.finalize().unwrap();
}

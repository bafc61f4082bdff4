//! Signer micro-benchmark (not a test): P-256 signatures per second on SoftHSM through the
//! `TokenSigner` pool (sign + verify, 1 and 2 threads) against raw cryptoki calls on the same
//! key (software SHA-256 + `C_Sign` with a cached handle, 1 and 2 sessions).
//!
//!     cargo bench --bench signer            (release profile; makes a throw-away token)
//!
//! `KUBESIGNER_BENCH_TOKEN=tpm` runs the same measurements on a TPM 2.0 through tpm2-pkcs11
//! (`hsm/tpm-token`: software TPM behind tpm2-abrmd, stopped afterwards);
//! `KUBESIGNER_BENCH_SIGNATURES=N` sets the signatures per thread (default 3000; a TPM signs
//! in milliseconds, so use a few hundred there).
//!
//! The module reads SOFTHSM2_CONF when it loads, so the benchmark creates the token, then runs
//! itself as a child with the variable set.
//!
//! With `--module`, it measures an existing token instead (`bench/run`'s slow-token phase, through
//! p11-kit's client module and `benches/p11_relay.rs`; the module's environment, such as
//! P11_KIT_SERVER_ADDRESS, comes from this process's):
//!
//!     signer --module M.so --token LABEL --object LABEL --pin-file F --threads N --secs S
//!
//! N threads, each with its own session and the key's handle found once, sign (software SHA-256
//! + `C_Sign`) for S seconds; prints one `result threads=N signatures=… secs=… rate=…` line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, ParsedPublicKey};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use kubesigner::signer::{Algorithm, Pkcs11Uri, Settings, SignKey, TokenSigner, UriOrigin, keygen};
use secrecy::SecretString;

/// Signatures per thread per measurement (`KUBESIGNER_BENCH_SIGNATURES`, default 3000).
fn n() -> usize {
    std::env::var("KUBESIGNER_BENCH_SIGNATURES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}
const CHILD: &str = "KUBESIGNER_BENCH_CHILD";

/// `hsm/tpm-token` when `KUBESIGNER_BENCH_TOKEN=tpm`, else `hsm/softhsm-token`.
fn token_script() -> &'static str {
    match std::env::var("KUBESIGNER_BENCH_TOKEN").as_deref() {
        Ok("tpm") => "tpm-token",
        _ => "softhsm-token",
    }
}

fn main() {
    if std::env::args().any(|a| a == "--module") {
        timed(&TimedArgs::parse());
        return;
    }
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hsm")
        .join(token_script());
    let out = Command::new(&script)
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
    let ok = cmd.status().unwrap().success();
    if token_script() == "tpm-token" {
        let _ = Command::new(&script).arg("--stop").arg(dir.path()).status();
    }
    assert!(ok);
}

/// Rounds per measurement; the best round is reported (the box is shared and noisy).
const ROUNDS: usize = 5;

type Best = std::collections::BTreeMap<(usize, &'static str, usize), f64>;

fn record(best: &mut Best, order: usize, name: &'static str, threads: usize, d: Duration) {
    let rate = (n() * threads) as f64 / d.as_secs_f64();
    let e = best.entry((order, name, threads)).or_insert(0.0);
    *e = e.max(rate);
}

fn child() {
    let module = std::env::var("KUBESIGNER_PKCS11_MODULE").unwrap();
    let pin_file = std::env::var("KUBESIGNER_PIN_FILE").unwrap();
    let text = format!(
        "pkcs11:token=bench;object=ca?module-path={module}&pin-source=file:{pin_file}&max-sessions=2"
    );
    let uri = Pkcs11Uri::parse(&text, UriOrigin::CommandLine).unwrap();
    let key = keygen(&uri, Algorithm::EcdsaP256, None, None).unwrap();
    let point = key.public.spki.subject_public_key.raw_bytes().to_vec();
    let verifier = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap();
    let der_verifier = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point).unwrap();
    let pin = std::fs::read_to_string(&pin_file).unwrap();
    let mut best = Best::new();
    for _ in 0..ROUNDS {
        for threads in [1, 2] {
            let d = raw(&module, &pin, threads, None);
            record(&mut best, 0, "raw cryptoki: SHA-256 + C_Sign", threads, d);
            let d = raw(&module, &pin, threads, Some(&verifier));
            record(
                &mut best,
                1,
                "raw cryptoki: SHA-256 + C_Sign + verify",
                threads,
                d,
            );
        }
        let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
        for threads in [1, 2] {
            let d = pool(&signer, threads);
            record(
                &mut best,
                2,
                "TokenSigner pool: sign (incl. verify)",
                threads,
                d,
            );
        }
        let sample = signer.sign(b"sample").unwrap();
        drop(signer);
        for threads in [1, 2] {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        for _ in 0..n() {
                            der_verifier.verify_sig(b"sample", &sample).unwrap();
                        }
                    });
                }
            });
            record(
                &mut best,
                3,
                "aws-lc-rs P-256 verify alone",
                threads,
                start.elapsed(),
            );
        }
    }
    let token = if token_script() == "tpm-token" {
        "a TPM 2.0 (tpm2-pkcs11, swtpm + tpm2-abrmd)"
    } else {
        "SoftHSM"
    };
    println!(
        "P-256 on {token}, best of {ROUNDS} rounds of {} signatures per thread:",
        n()
    );
    for ((_, name, threads), rate) in best {
        let us = threads as f64 * 1e6 / rate;
        println!("{name:<42} {threads} thread(s): {rate:>7.0}/s  ({us:.1} µs each per thread)");
    }
}

fn pool(signer: &Arc<TokenSigner>, threads: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                for i in 0..n() {
                    signer.sign(format!("tbs {t} {i}").as_bytes()).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

/// Raw cryptoki: one session per thread, handle found once, SHA-256 in software, `C_Sign`,
/// optionally the same aws-lc-rs verification the signer does.
fn raw(module: &str, pin: &str, threads: usize, verify: Option<&ParsedPublicKey>) -> Duration {
    let ctx = Pkcs11::new(module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx.get_slots_with_token().unwrap()[0];
    let login = ctx.open_ro_session(slot).unwrap();
    login
        .login(UserType::User, Some(&SecretString::from(pin)))
        .unwrap();
    let sessions: Vec<_> = (0..threads)
        .map(|_| {
            let session = ctx.open_ro_session(slot).unwrap();
            let template = [
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(b"ca".to_vec()),
            ];
            let key = session.find_objects(&template).unwrap()[0];
            (session, key)
        })
        .collect();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for (t, (session, key)) in sessions.into_iter().enumerate() {
            scope.spawn(move || {
                for i in 0..n() {
                    let msg = format!("tbs {t} {i}");
                    let d = digest::digest(&digest::SHA256, msg.as_bytes());
                    let sig = session.sign(&Mechanism::Ecdsa, key, d.as_ref()).unwrap();
                    if let Some(v) = verify {
                        v.verify_sig(msg.as_bytes(), &sig).unwrap();
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    drop(login);
    ctx.finalize().unwrap();
    elapsed
}

struct TimedArgs {
    module: String,
    token: String,
    object: String,
    pin_file: String,
    threads: usize,
    secs: f64,
}

impl TimedArgs {
    fn parse() -> Self {
        let mut a = TimedArgs {
            module: String::new(),
            token: String::new(),
            object: "ca".into(),
            pin_file: String::new(),
            threads: 1,
            secs: 5.0,
        };
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            match k.as_str() {
                "--bench" => {}
                "--module" => a.module = it.next().unwrap(),
                "--token" => a.token = it.next().unwrap(),
                "--object" => a.object = it.next().unwrap(),
                "--pin-file" => a.pin_file = it.next().unwrap(),
                "--threads" => a.threads = it.next().unwrap().parse().unwrap(),
                "--secs" => a.secs = it.next().unwrap().parse().unwrap(),
                other => panic!("signer: unknown argument {other}"),
            }
        }
        a
    }
}

/// N sessions signing for a fixed time on an existing token (selected by label).
fn timed(a: &TimedArgs) {
    let ctx = Pkcs11::new(&a.module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == a.token)
        .expect("no token with that label");
    let pin = std::fs::read_to_string(&a.pin_file).unwrap();
    let login = ctx.open_ro_session(slot).unwrap();
    login
        .login(UserType::User, Some(&SecretString::from(pin.trim())))
        .unwrap();
    let sessions: Vec<_> = (0..a.threads)
        .map(|_| {
            let session = ctx.open_ro_session(slot).unwrap();
            let template = [
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(a.object.as_bytes().to_vec()),
            ];
            let key = session.find_objects(&template).unwrap()[0];
            (session, key)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs_f64(a.secs);
    let start = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .into_iter()
            .enumerate()
            .map(|(t, (session, key))| {
                scope.spawn(move || {
                    let mut i = 0;
                    while Instant::now() < deadline {
                        let msg = format!("tbs {t} {i}");
                        let d = digest::digest(&digest::SHA256, msg.as_bytes());
                        session.sign(&Mechanism::Ecdsa, key, d.as_ref()).unwrap();
                        i += 1;
                    }
                    i
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    drop(login);
    ctx.finalize().unwrap();
    println!(
        "result threads={} signatures={total} secs={secs:.3} rate={:.1}",
        a.threads,
        total as f64 / secs
    );
}

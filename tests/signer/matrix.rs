//! The signer on two token implementations, same assertions: SoftHSM and a TPM 2.0 through
//! tpm2-pkcs11 (software TPM + resource manager, `hsm/tpm-token`). Each test runs once per
//! implementation (`<test>::softhsm`, `<test>::tpm`) on a fresh token: keygen attributes read
//! back, `ca init`, sign + verify-after-sign (checked again by openssl), concurrent signing
//! through the session pool, a wrong PIN tried exactly once, and (TPM) the token's stack killed
//! and restarted under an open signer. Where the implementations differ the test says so; the
//! differences are recorded in docs/tokens.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::tokens;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use kubesigner::signer::{
    ErrorClass, Pkcs11Uri, Settings, SignKey, SignerError, SignerStatus, TokenSigner, UriOrigin,
    login_calls,
};
use secrecy::SecretString;
use tokens::{Impl, Token};

/// `mod <test> { fn softhsm(); fn tpm(); }` calling `<test>(Impl, "<test>::<impl>")`.
macro_rules! matrix {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn softhsm() {
                super::$name(super::Impl::SoftHsm, concat!(stringify!($name), "::softhsm"));
            }
            #[test]
            fn tpm() {
                super::$name(super::Impl::Tpm, concat!(stringify!($name), "::tpm"));
            }
        }
    )*};
}

matrix!(
    keygen_attributes,
    ca_init,
    sign_and_verify,
    concurrent_pool,
    wrong_pin_once,
    select_by_slot_id
);

fn fresh(imp: Impl, label: &str) -> (tempfile::TempDir, Token) {
    let dir = tempfile::tempdir().unwrap();
    let tok = Token::create(imp, dir.path(), label);
    (dir, tok)
}

fn open(tok: &Token, key: &str, extra: &str) -> Arc<TokenSigner> {
    let uri = Pkcs11Uri::parse(&tok.uri_with(key, extra), UriOrigin::CommandLine).unwrap();
    TokenSigner::open(&uri, Settings::default()).unwrap()
}

fn logged_in(tok: &Token) -> (Pkcs11, Session) {
    let ctx = Pkcs11::new(&tok.module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx.get_slots_with_token().unwrap()[0];
    let session = ctx.open_ro_session(slot).unwrap();
    session
        .login(UserType::User, Some(&SecretString::from(tok.pin())))
        .unwrap();
    (ctx, session)
}

fn read_bools(session: &Session, class: ObjectClass, label: &str) -> Vec<Attribute> {
    let h = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(h.len(), 1, "{class:?} {label}");
    let types = [
        AttributeType::Token,
        AttributeType::Private,
        AttributeType::Sensitive,
        AttributeType::AlwaysSensitive,
        AttributeType::Extractable,
        AttributeType::NeverExtractable,
        AttributeType::Local,
        AttributeType::Sign,
        AttributeType::SignRecover,
        AttributeType::Decrypt,
        AttributeType::Unwrap,
        AttributeType::Derive,
        AttributeType::Verify,
        AttributeType::Encrypt,
        AttributeType::Wrap,
    ];
    session.get_attributes(h[0], &types).unwrap()
}

fn has(attrs: &[Attribute], want: &Attribute) -> bool {
    attrs
        .iter()
        .any(|a| format!("{a:?}") == format!("{want:?}"))
}

fn count_objects(session: &Session) -> usize {
    session.find_objects(&[]).unwrap().len()
}

/// `hsm keygen` makes a sensitive, never-extractable, local, sign-only private key on both;
/// the public key's CKA_VERIFY/CKA_ENCRYPT are the token's (SoftHSM: verify; tpm2-pkcs11:
/// the TPM object's sign bit shows as CKA_ENCRYPT, verify false). A size the token's
/// mechanism information excludes is refused before anything is made.
fn keygen_attributes(imp: Impl, test: &str) {
    if let Some(tok) = Token::child(test) {
        let (ctx, session) = logged_in(&tok);
        for label in ["ec", "rsa"] {
            let private = read_bools(&session, ObjectClass::PRIVATE_KEY, label);
            for want in [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::AlwaysSensitive(true),
                Attribute::Extractable(false),
                Attribute::NeverExtractable(true),
                Attribute::Local(true),
                Attribute::Sign(true),
                Attribute::SignRecover(false),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
            ] {
                assert!(
                    has(&private, &want),
                    "{label} private key lacks {want:?}: {private:?}"
                );
            }
            let public = read_bools(&session, ObjectClass::PUBLIC_KEY, label);
            for want in [Attribute::Token(true), Attribute::Wrap(false)] {
                assert!(has(&public, &want), "{label} public: {want:?}: {public:?}");
            }
            // What the token chose (docs/tokens.md): asserted so the docs stay true.
            let verify = Attribute::Verify(tok.imp == Impl::SoftHsm);
            assert!(has(&public, &verify), "{label} public: {public:?}");
        }
        let before = count_objects(&session);
        drop(session);
        drop(ctx);
        if tok.imp == Impl::Tpm {
            // tpm2-pkcs11 on swtpm: RSA 1024..3072 bits only.
            let out = tok.kubesigner(&[
                "hsm",
                "keygen",
                "--uri",
                &tok.uri("big"),
                "--algorithm",
                "rsa-4096",
            ]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains("cannot make an rsa-4096 signing key"), "{err}");
            let (_ctx, session) = logged_in(&tok);
            assert_eq!(count_objects(&session), before, "nothing was made");
        }
        return;
    }
    let (_d, tok) = fresh(imp, "attrs");
    let ec = tok.keygen("ec", "ecdsa-p256");
    let text = String::from_utf8_lossy(&ec.stdout);
    assert!(
        text.contains("private key: sensitive, never extractable"),
        "{text}"
    );
    tok.keygen("rsa", "rsa-2048");
    tok.run_child(module_path!(), test);
}

/// `ca init` on a key made by `hsm keygen`: a self-signed CA openssl accepts, and the audit
/// key generated (said so) with its public key written. Without the CA key: one line, exit 64,
/// nothing written, no key made.
fn ca_init(imp: Impl, _test: &str) {
    let (d, tok) = fresh(imp, "cainit");
    tok.keygen("ca", "ecdsa-p256");
    let ca = d.path().join("ca.crt");
    let out = tok.kubesigner(&[
        "ca",
        "init",
        "--uri",
        &tok.uri("ca"),
        "--out",
        ca.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("generating it"),
        "the audit key is announced: {err}"
    );
    assert!(d.path().join("audit-key.pem").is_file());
    let v = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca)
        .arg(&ca)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

    let other = d.path().join("other").join("ca.crt");
    std::fs::create_dir(d.path().join("other")).unwrap();
    let out = tok.kubesigner(&[
        "ca",
        "init",
        "--uri",
        &tok.uri("absent"),
        "--out",
        other.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("hsm keygen"), "{err}");
    assert_eq!(
        std::fs::read_dir(d.path().join("other")).unwrap().count(),
        0
    );
}

/// Sign + verify for P-256, P-384 and RSA-2048: the signer verifies before returning, openssl
/// verifies again, a changed message fails. Prints the sequential signing rate (P-256).
fn sign_and_verify(imp: Impl, test: &str) {
    const SEQUENTIAL: usize = 20;
    if let Some(tok) = Token::child(test) {
        for (key, digest) in [("p256", "-sha256"), ("p384", "-sha384"), ("rsa", "-sha256")] {
            let signer = open(&tok, key, "");
            let msg = format!("tbsCertificate stand-in for {key}").into_bytes();
            let sig = signer.sign(&msg).unwrap();
            let pem =
                der::EncodePem::to_pem(signer.public_key(), der::pem::LineEnding::LF).unwrap();
            assert!(
                tokens::tools::openssl_verify_signature(&tok.dir, &pem, digest, &msg, &sig),
                "{key}"
            );
            assert!(!tokens::tools::openssl_verify_signature(
                &tok.dir, &pem, digest, b"other", &sig
            ));
            if key == "p256" {
                let t = Instant::now();
                for i in 0..SEQUENTIAL {
                    signer.sign(format!("m{i}").as_bytes()).unwrap();
                }
                let per = t.elapsed() / SEQUENTIAL as u32;
                println!(
                    "{:?} P-256 sequential: {:.1} ms per signature ({:.0}/s)",
                    tok.imp,
                    per.as_secs_f64() * 1e3,
                    1.0 / per.as_secs_f64()
                );
            }
            assert_eq!(signer.bad_signatures(), 0);
        }
        return;
    }
    let (_d, tok) = fresh(imp, "sign");
    tok.keygen("p256", "ecdsa-p256");
    tok.keygen("p384", "ecdsa-p384");
    tok.keygen("rsa", "rsa-2048");
    tok.run_child(module_path!(), test);
}

/// 8 threads sign through a pool of 3 sessions: every signature verifies, the pool never
/// exceeds its bound and is used. Prints the concurrent rate.
fn concurrent_pool(imp: Impl, test: &str) {
    const THREADS: usize = 8;
    const MAX_SESSIONS: usize = 3;
    if let Some(tok) = Token::child(test) {
        // The TPM signs in milliseconds, SoftHSM in microseconds: same test, fewer rounds.
        let per_thread = if tok.imp == Impl::Tpm { 10 } else { 60 };
        let signer = open(&tok, "ca", &format!("&max-sessions={MAX_SESSIONS}"));
        let start = Arc::new(std::sync::Barrier::new(THREADS));
        let t = Instant::now();
        let handles: Vec<_> = (0..THREADS)
            .map(|n| {
                let (signer, start) = (Arc::clone(&signer), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    (0..per_thread)
                        .map(|i| {
                            let msg = format!("thread {n} message {i}").into_bytes();
                            let sig = signer.sign(&msg).unwrap();
                            (msg, sig)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let signed: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let took = t.elapsed();
        let point = signer.public_key().subject_public_key.raw_bytes().to_vec();
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            &point,
        );
        for (msg, sig) in &signed {
            key.verify(msg, sig).unwrap();
        }
        assert_eq!(signed.len(), THREADS * per_thread);
        let peak = signer.peak_sessions();
        assert!((2..=MAX_SESSIONS).contains(&peak), "peak {peak}");
        assert_eq!(signer.bad_signatures(), 0);
        println!(
            "{:?} P-256 with {THREADS} threads, {MAX_SESSIONS} sessions: {} signatures in {} ms \
             ({:.0}/s), peak sessions {peak}",
            tok.imp,
            signed.len(),
            took.as_millis(),
            signed.len() as f64 / took.as_secs_f64()
        );
        return;
    }
    let (_d, tok) = fresh(imp, "pool");
    tok.keygen("ca", "ecdsa-p256");
    tok.run_child(module_path!(), test);
}

/// TPM: the dictionary-attack failure counter (`TPM2_PT_LOCKOUT_COUNTER`).
fn lockout_counter(tok: &Token) -> u32 {
    let tcti = tok
        .env
        .iter()
        .find(|(k, _)| k == "TPM2_PKCS11_TCTI")
        .map(|(_, v)| v.clone())
        .unwrap();
    let out = Command::new("tpm2_getcap")
        .arg("properties-variable")
        .env("TPM2TOOLS_TCTI", tcti)
        .envs(tok.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("TPM2_PT_LOCKOUT_COUNTER"))
        .unwrap_or_else(|| panic!("no lockout counter: {text}"));
    let hex = line.rsplit("0x").next().unwrap().trim();
    u32::from_str_radix(hex, 16).unwrap()
}

/// A wrong PIN is tried exactly once (one `C_Login`; on the TPM one dictionary-attack count,
/// of the 3 before the whole TPM locks out), reported as a PIN error (exit 64, one line), and
/// the right PIN still works afterwards.
fn wrong_pin_once(imp: Impl, test: &str) {
    if let Some(tok) = Token::child(test) {
        let text = tok.uri("ca").replace(
            &tok.pin_file.display().to_string(),
            &tok.dir.join("wrong-pin").display().to_string(),
        );
        let uri = Pkcs11Uri::parse(&text, UriOrigin::CommandLine).unwrap();
        assert_eq!(login_calls(), 0);
        let err = TokenSigner::open(&uri, Settings::default()).unwrap_err();
        assert_eq!(login_calls(), 1, "the wrong PIN must be tried exactly once");
        assert!(
            matches!(
                &err,
                SignerError::Pkcs11 {
                    class: ErrorClass::Pin,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.exit_code(), 64);
        let signer = open(&tok, "ca", "");
        signer.sign(b"after a wrong PIN").unwrap();
        return;
    }
    let (d, tok) = fresh(imp, "pin");
    tok.keygen("ca", "ecdsa-p256");
    let wrong = d.path().join("wrong-pin");
    std::fs::write(&wrong, "not-the-pin").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    tok.run_child(module_path!(), test);
    if imp == Impl::Tpm {
        assert_eq!(
            lockout_counter(&tok),
            1,
            "one wrong PIN, one TPM failure count"
        );
    }
    let wrong = tok.uri("ca").replace(
        &tok.pin_file.display().to_string(),
        &d.path().join("wrong-pin").display().to_string(),
    );
    let out = tok.kubesigner(&["hsm", "check", "--uri", &wrong]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    // One line of ours; tpm2-pkcs11 and the TSS print their own diagnostics to stderr first
    // (docs/tokens.md).
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("kubesigner"))
        .collect();
    assert_eq!(ours.len(), 1, "{err}");
    assert!(
        ours[0].contains("C_Login failed: CKR_PIN_INCORRECT"),
        "{err}"
    );
    if imp == Impl::SoftHsm {
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    if imp == Impl::Tpm {
        assert_eq!(lockout_counter(&tok), 2);
    }
    let ok = tok.kubesigner(&["hsm", "check", "--uri", &tok.uri("ca")]);
    assert!(
        ok.status.success(),
        "{:?} {} {}",
        ok.status,
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// TPM outage under an open signer: the TPM (swtpm) and its resource manager (tpm2-abrmd)
/// killed with SIGKILL; the idle signer notices (keepalive), signing fails fast; the stack
/// restarted on the same state; the signer re-initialises by itself and signs with the same
/// key. (SoftHSM's
/// equivalent, a p11-kit server killed and restarted, is tests/signer/recovery.rs.)
#[test]
fn tpm_outage_and_recovery() {
    const T: &str = "tpm_outage_and_recovery";
    if let Some(tok) = Token::child(T) {
        let uri = Pkcs11Uri::parse(&tok.uri("ca"), UriOrigin::CommandLine).unwrap();
        let settings = Settings {
            keepalive_interval: Duration::from_millis(200),
            ..Settings::default()
        };
        let signer = TokenSigner::open(&uri, settings).unwrap();
        signer.sign(b"before").unwrap();
        tok.kill_tpm();
        // Idle: the keepalive reaches the TPM (a random byte) and sees it gone.
        let t = Instant::now();
        while signer.ready() {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "an idle signer did not notice the TPM was gone"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        println!("idle signer saw the TPM gone after {:?}", t.elapsed());
        assert!(matches!(signer.status(), SignerStatus::Down { .. }));
        let t = Instant::now();
        let err = signer.sign(b"during").unwrap_err();
        let failed_in = t.elapsed();
        println!("signing with the TPM stack dead failed in {failed_in:?}: {err}");
        assert!(failed_in < Duration::from_secs(1), "{failed_in:?}");
        // Fails fast while down.
        let t = Instant::now();
        assert!(signer.sign(b"still down").is_err());
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        let logins = login_calls();
        tok.start_tpm();
        let t = Instant::now();
        // The supervisor re-initialises by itself: no signing call needed to bring it back.
        while !signer.ready() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "not ready 10 s after the TPM stack returned: {:?}",
                signer.status()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        loop {
            if signer.sign(b"after").is_ok() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "not back 10 s after the TPM stack returned: {:?}",
                signer.status()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "signing back {:?} after the TPM stack restarted",
            t.elapsed()
        );
        assert!(signer.ready());
        assert!(signer.recoveries() >= 1);
        assert!(login_calls() > logins, "re-initialisation logs in again");
        assert_eq!(signer.bad_signatures(), 0);
        return;
    }
    let (_d, tok) = fresh(Impl::Tpm, "outage");
    tok.keygen("ca", "ecdsa-p256");
    tok.run_child(module_path!(), T);
}

/// `slot-id=` selects the token without reading its token information (a token whose
/// `C_GetTokenInfo` cryptoki cannot parse is still usable: docs/tokens.md, opencryptoki); a
/// slot id with no token is a configuration error.
fn select_by_slot_id(imp: Impl, _test: &str) {
    let (_d, tok) = fresh(imp, "slotid");
    tok.keygen("ca", "ecdsa-p256");
    let list = Command::new("pkcs11-tool")
        .args(["--module", &tok.module, "-L"])
        .envs(tok.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    // "Slot 0 (0x1): <description>" followed by "  token label        : slotid".
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("token label") && l.trim_end().ends_with(": slotid"))
        .unwrap_or_else(|| panic!("{text}"));
    let slot_line = lines[..at]
        .iter()
        .rev()
        .find(|l| l.starts_with("Slot "))
        .unwrap();
    let hex = slot_line
        .split("(0x")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let id = u64::from_str_radix(hex, 16).unwrap();
    let uri = |slot: u64| {
        format!(
            "pkcs11:slot-id={slot};object=ca?module-path={}&pin-source=file:{}",
            tok.module,
            tok.pin_file.display()
        )
    };
    let ok = tok.kubesigner(&["hsm", "check", "--uri", &uri(id)]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let missing = tok.kubesigner(&["hsm", "check", "--uri", &uri(id + 1000)]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(64), "{err}");
    assert!(err.contains("no token matches slot-id="), "{err}");
}

//! The session pool under concurrent signing from 8 threads: every signature verifies
//! (independently, with aws-lc-rs on the exported SubjectPublicKeyInfo), the sessions are open
//! before the first signature, and the number of open sessions never exceeds max-sessions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::signer_support;

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use kubesigner::signer::{Pkcs11Uri, Settings, SignKey, TokenSigner, UriOrigin};
use signer_support::TokenEnv;

const THREADS: usize = 8;
const PER_THREAD: usize = 60;
const MAX_SESSIONS: usize = 3;

#[test]
fn eight_threads_share_a_bounded_pool() {
    if let Some(tok) = TokenEnv::child("eight_threads_share_a_bounded_pool") {
        let text = tok.uri_with(&tok.module, "ca", &format!("&max-sessions={MAX_SESSIONS}"));
        let uri = Pkcs11Uri::parse(&text, UriOrigin::CommandLine).unwrap();
        let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
        assert_eq!(signer.max_sessions(), MAX_SESSIONS);
        // Opened ahead, before the first signature; none in use yet.
        assert_eq!(signer.open_sessions(), MAX_SESSIONS);
        assert_eq!(signer.peak_sessions(), 0);
        let point = signer.public_key().subject_public_key.raw_bytes().to_vec();
        let start = Arc::new(std::sync::Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let signer = Arc::clone(&signer);
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    (0..PER_THREAD)
                        .map(|i| {
                            let msg = format!("thread {t} message {i}").into_bytes();
                            let sig = signer.sign(&msg).unwrap();
                            (msg, sig)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut count = 0;
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point);
        for h in handles {
            for (msg, sig) in h.join().unwrap() {
                key.verify(&msg, &sig).unwrap();
                count += 1;
            }
        }
        assert_eq!(count, THREADS * PER_THREAD);
        let peak = signer.peak_sessions();
        assert!(
            peak <= MAX_SESSIONS,
            "peak {peak} sessions > {MAX_SESSIONS}"
        );
        assert!(peak >= 2, "8 threads never used more than one session");
        assert!(signer.open_sessions() <= MAX_SESSIONS);
        assert_eq!(signer.bad_signatures(), 0);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "pool");
    tok.keygen("ca", "ecdsa-p256");
    tok.run_child(module_path!(), "eight_threads_share_a_bounded_pool", &[]);
}

/// A signer's supervisor thread may hold a reference when the owner drops it (it keeps alive
/// back to back here). The owner's drop must still close the module before it returns: opening
/// it again right after (as `dev` does: probe, generate, open) must not fail with "already
/// initialised", and a process that exits right after must not race a `C_Finalize` on the
/// supervisor thread (seen as SIGSEGV in SoftHSM). 200 drop-and-reopen rounds, every tenth
/// signing once, then the process exits.
#[test]
fn a_signer_reopened_right_after_a_drop_waits_for_the_finalize() {
    const ROUNDS: usize = 200;
    if let Some(tok) =
        TokenEnv::child("a_signer_reopened_right_after_a_drop_waits_for_the_finalize")
    {
        let uri =
            Pkcs11Uri::parse(&tok.uri_with(&tok.module, "ca", ""), UriOrigin::CommandLine).unwrap();
        let settings = Settings {
            // The supervisor keeps alive back to back, so it holds the signer most of the time.
            keepalive_interval: std::time::Duration::ZERO,
            ..Settings::default()
        };
        for round in 0..ROUNDS {
            let signer = TokenSigner::open(&uri, settings.clone())
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            if round % 10 == 0 {
                signer.sign(b"m").unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            drop(signer);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "reopen");
    tok.keygen("ca", "ecdsa-p256");
    tok.run_child(
        module_path!(),
        "a_signer_reopened_right_after_a_drop_waits_for_the_finalize",
        &[],
    );
}

/// Another key of the token (the audit key's path: `sign_with_label`) is looked up once per
/// session and kept with it. With one session, labels asked in turn must each get their own
/// key: the public half returned (and checked against the signature) for a label asked again
/// is the one found the first time, and differs from the other label's.
#[test]
fn other_keys_kept_per_session_answer_for_their_own_label() {
    if let Some(tok) = TokenEnv::child("other_keys_kept_per_session_answer_for_their_own_label") {
        let text = tok.uri_with(&tok.module, "ca", "&max-sessions=1");
        let uri = Pkcs11Uri::parse(&text, UriOrigin::CommandLine).unwrap();
        let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
        let (_, a1) = signer.sign_with_label("audit-a", b"one").unwrap();
        let (_, b1) = signer.sign_with_label("audit-b", b"two").unwrap();
        let (_, a2) = signer.sign_with_label("audit-a", b"three").unwrap();
        let (_, a3) = signer.sign_with_label("audit-a", b"four").unwrap();
        assert_ne!(a1.spki, b1.spki, "two labels, one key");
        assert_eq!(a1.spki, a2.spki, "audit-a after audit-b");
        assert_eq!(a1.spki, a3.spki, "audit-a kept");
        assert!(signer.sign_with_label("no-such-key", b"five").is_err());
        let (_, a4) = signer.sign_with_label("audit-a", b"six").unwrap();
        assert_eq!(a1.spki, a4.spki, "audit-a after a failed lookup");
        assert_eq!(signer.open_sessions(), 1);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "others");
    tok.keygen("ca", "ecdsa-p256");
    tok.keygen("audit-a", "ecdsa-p256");
    tok.keygen("audit-b", "ecdsa-p256");
    tok.run_child(
        module_path!(),
        "other_keys_kept_per_session_answer_for_their_own_label",
        &[],
    );
}

//! `kubesigner_token_sessions_in_use` counts signing sessions checked out of the pool, not
//! signatures in flight: 8 threads signing through a pool of 2 never show more than 2, and 0
//! once they are done.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::signer_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use kubesigner::signer::{Pkcs11Uri, Settings, SignKey, TokenSigner, UriOrigin};
use signer_support::TokenEnv;

const THREADS: usize = 8;
const PER_THREAD: usize = 80;
const MAX_SESSIONS: usize = 2;

#[test]
fn sessions_in_use_counts_checked_out_sessions() {
    if let Some(tok) = TokenEnv::child("sessions_in_use_counts_checked_out_sessions") {
        let text = tok.uri_with(&tok.module, "ca", &format!("&max-sessions={MAX_SESSIONS}"));
        let uri = Pkcs11Uri::parse(&text, UriOrigin::CommandLine).unwrap();
        let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
        let gauge = &kubesigner::metrics::global().sessions_in_use;
        let done = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicI64::new(0));
        let sampler = {
            let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
            std::thread::spawn(move || {
                let gauge = &kubesigner::metrics::global().sessions_in_use;
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(gauge.get(), Ordering::Relaxed);
                    std::thread::yield_now();
                }
            })
        };
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let signer = Arc::clone(&signer);
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        signer.sign(format!("{t}/{i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        let peak = peak.load(Ordering::Relaxed);
        assert!(peak >= 1, "the gauge never moved");
        assert!(
            peak <= MAX_SESSIONS as i64,
            "gauge peaked at {peak} with a pool of {MAX_SESSIONS}"
        );
        assert_eq!(gauge.get(), 0);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "sessions");
    tok.keygen("ca", "ecdsa-p256");
    tok.run_child(
        module_path!(),
        "sessions_in_use_counts_checked_out_sessions",
        &[],
    );
}

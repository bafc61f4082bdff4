//! Graceful shutdown: SIGTERM under create load stops accepting, lets in-flight requests and
//! signatures finish, closes the token (sessions closed, module finalized) and exits 0; every
//! acknowledged CSR is there and signed after the next start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{api_support, faults};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faults::{CSRS, Outcome, Rig};
use http::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_in_flight_and_exits_zero() {
    let mut rig = Rig::setup(true, None, "", "");
    rig.start_hsm();
    rig.start().await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (client, stop, acked) = (rig.client.clone(), stop.clone(), Arc::clone(&acked));
            tokio::spawn(async move {
                let mut sent = 0;
                while !*stop.borrow() {
                    let name = format!("term-{w}-{sent}");
                    let body = api_support::node_csr(&name, &name);
                    sent += 1;
                    let r = client
                        .send(Method::POST, CSRS, Some(&body), Duration::from_secs(10))
                        .await;
                    if matches!(&r, Ok(r) if r.code == 201) {
                        acked.lock().unwrap().push(name);
                    }
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = Instant::now();
    let code = tokio::task::block_in_place(|| rig.terminate(Duration::from_secs(15)));
    let took = t.elapsed();
    stop_tx.send(true).unwrap();
    let mut out = Outcome::default();
    for w in workers {
        out.sent += w.await.unwrap();
    }
    let log = rig.log();
    assert_eq!(code, Some(0), "exit code after SIGTERM:\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains("PKCS#11 token closed"),
        "sessions not closed / module not finalized:\n{log}"
    );
    assert!(!log.contains("still open after the grace period"), "{log}");
    assert_eq!(rig.integrity_check(), "ok");
    rig.start().await;
    let names = acked.lock().unwrap().clone();
    let all = rig.wait_signed(&names, Duration::from_secs(20)).await;
    out.acknowledged = names.len();
    out.lost = names.iter().filter(|n| !all.contains_key(*n)).count();
    out.duplicate_serials = faults::duplicate_serials(all.values()).1;
    out.recovery_ms = took.as_millis();
    assert_eq!(out.lost, 0);
    assert_eq!(out.duplicate_serials, 0);
    out.print("sigterm");
}

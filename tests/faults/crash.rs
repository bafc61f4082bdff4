//! Fault suite: `kubesigner serve` killed with SIGKILL at random points under create load.
//! After each restart every CSR the client saw acknowledged (201) is there, approved, with a
//! certificate (or signed shortly after by the backlog), `PRAGMA integrity_check` is ok, the audit chain exports and verifies, and
//! no certificate serial appears twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{api_support, faults};

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faults::{CSRS, Outcome, Rig, scale};
use http::Method;

/// A small deterministic generator (xorshift) seeded from the clock; the seed is printed so a
/// failing run can be repeated with `KUBESIGNER_FAULTS_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("KUBESIGNER_FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("seed={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_loses_nothing_acknowledged() {
    let mut rig = Rig::setup(false, None, "", "");
    rig.start().await;
    let mut rng = Rng::new();
    let kills = scale(5, 20);
    let acked = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut out = Outcome::default();
    for round in 0..kills {
        // Load: 4 workers creating distinct node CSRs until the kill.
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (client, stop, acked) = (rig.client.clone(), stop.clone(), Arc::clone(&acked));
                let base = w * 100_000;
                tokio::spawn(async move {
                    let mut sent = 0;
                    while !*stop.borrow() {
                        let name = format!("crash-{round}-{}", base + sent);
                        let body = api_support::node_csr(&name, &name);
                        sent += 1;
                        let r = client
                            .send(Method::POST, CSRS, Some(&body), Duration::from_secs(10))
                            .await;
                        if matches!(&r, Ok(r) if r.code == 201) {
                            acked.lock().unwrap().insert(name);
                        }
                    }
                    sent
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1500))).await;
        rig.kill9();
        stop_tx.send(true).unwrap();
        for w in workers {
            out.sent += w.await.unwrap();
        }
        let integrity = rig.integrity_check();
        assert_eq!(integrity, "ok", "round {round}");
        // The audit chain survives the crash: export it and verify it with no other input.
        let export = std::process::Command::new(env!("CARGO_BIN_EXE_kubesigner"))
            .args(["audit", "export", "--config"])
            .arg(&rig.config)
            .output()
            .unwrap();
        assert!(
            export.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&export.stderr)
        );
        let file = rig.config.with_file_name(format!("audit-{round}.jsonl"));
        std::fs::write(&file, &export.stdout).unwrap();
        let verify = std::process::Command::new(env!("CARGO_BIN_EXE_kubesigner"))
            .args(["audit", "verify"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "round {round}: audit verify: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        let t = Instant::now();
        rig.start().await;
        out.recovery_ms = out.recovery_ms.max(t.elapsed().as_millis());
        let names: Vec<String> = acked.lock().unwrap().iter().cloned().collect();
        let all = rig.wait_signed(&names, Duration::from_secs(20)).await;
        let lost = names.iter().filter(|n| !all.contains_key(*n)).count();
        let (_, dups) = faults::duplicate_serials(all.values());
        assert_eq!(lost, 0, "round {round}");
        assert_eq!(dups, 0, "round {round}");
    }
    let all = rig.list().await;
    let (_, dups) = faults::duplicate_serials(all.values());
    out.acknowledged = acked.lock().unwrap().len();
    out.lost = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|n| !all.contains_key(*n))
        .count();
    out.duplicate_serials = dups;
    assert!(out.acknowledged > 0);
    println!("kills={kills}");
    out.print("kill9");
}

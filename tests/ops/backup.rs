//! `kubesigner backup` while `serve` runs under writes, `restore` refused while it runs, then
//! restored into a fresh data dir that a new `serve` runs from: the CSRs and the audit chain
//! are intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::ops;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ops::{Served, kubectl_ok};

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn csr_names(kubeconfig: &std::path::Path) -> Vec<String> {
    let out = kubectl_ok(kubeconfig, &["get", "csr", "-o", "name"]);
    let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
    v.sort();
    v
}

#[test]
fn backup_while_serving_restores_into_a_fresh_data_dir() {
    let mut s = Served::setup("");
    s.start();
    for i in 0..3 {
        s.create_csr(&format!("before-{i}"), &format!("node{i}"));
    }
    // Writers keep creating CSRs while the backup runs.
    let s = Arc::new(s);
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (s, stop, made) = (Arc::clone(&s), Arc::clone(&stop), Arc::clone(&made));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                s.create_csr(&format!("during-{i}"), &format!("w{i}"));
                made.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    while made.load(Ordering::Relaxed) < 2 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let cfg = s.config();
    let out = s.dir.path().join("store.backup");
    let backed = s.cli(&[
        "backup",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(backed.status.success(), "{}", text(&backed));
    assert!(text(&backed).contains("chain intact"), "{}", text(&backed));
    while made.load(Ordering::Relaxed) < 4 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    // Restore refuses while the service runs (it holds the data dir's lock).
    let refused = s.cli(&[
        "restore",
        "--config",
        cfg.to_str().unwrap(),
        "--from",
        out.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(refused.status.code(), Some(69), "{}", text(&refused));
    assert!(
        text(&refused).contains("stop the service"),
        "{}",
        text(&refused)
    );

    let mut s = Arc::try_unwrap(s).ok().unwrap();
    let served_before = csr_names(&s.admin());
    s.stop();

    // A fresh data dir, same token and CA.
    let cfg2 = s.state().join("restored.toml");
    let c = std::fs::read_to_string(&cfg).unwrap();
    assert!(c.contains("data_dir = \"state\""));
    std::fs::write(
        &cfg2,
        c.replace("data_dir = \"state\"", "data_dir = \"state-restored\""),
    )
    .unwrap();
    let restored = s.cli(&[
        "restore",
        "--config",
        cfg2.to_str().unwrap(),
        "--from",
        out.to_str().unwrap(),
    ]);
    assert!(restored.status.success(), "{}", text(&restored));
    // Not over an existing store without --force.
    let again = s.cli(&[
        "restore",
        "--config",
        cfg2.to_str().unwrap(),
        "--from",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(64), "{}", text(&again));

    s.start_with(&cfg2);
    let names = csr_names(&s.admin());
    for i in 0..3 {
        assert!(
            names.contains(&format!(
                "certificatesigningrequest.certificates.k8s.io/before-{i}"
            )),
            "{names:?}"
        );
    }
    // A consistent snapshot: some of the concurrent writes, never more than were served.
    assert!(
        names.len() >= 5 && names.len() <= served_before.len(),
        "{names:?} vs {served_before:?}"
    );
    assert!(names.iter().all(|n| served_before.contains(n)));
    // The restored appliance keeps working and its audit chain verifies.
    s.create_csr("after-restore", "node9");
    let export = ops::Served::export_with(&cfg2);
    let p = s.dir.path().join("restored.jsonl");
    std::fs::write(&p, &export).unwrap();
    let ok = s.cli(&["audit", "verify", p.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", text(&ok));
    let creates = export
        .lines()
        .filter(|l| l.contains("\"kind\":\"create\""))
        .count();
    assert_eq!(creates, names.len() + 1, "{export}");
}

//! Fault suite: the data dir fills up. The store lives on a small tmpfs (tests run as root in
//! CI; skipped with a printed reason where mounting is not allowed). With the disk full, writes
//! fail cleanly with a `Status` (503/507, never a hang or a 500), nothing half-written is left,
//! reads and health keep answering, and writes work again when space returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{api_support, faults};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use faults::{CSRS, Outcome, Rig};
use http::Method;

/// Size of the tmpfs holding the data dir.
const TMPFS_SIZE: &str = "8m";

/// A tmpfs mount, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Tmpfs(dir.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `path` until ENOSPC.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

async fn create(rig: &Rig, name: &str) -> faults::Reply {
    let body = api_support::node_csr(name, name);
    let t = Instant::now();
    let r = rig
        .client
        .send(Method::POST, CSRS, Some(&body), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}\n{}", rig.log()));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "create took {:?}",
        t.elapsed()
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_fails_cleanly_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    let _tmpfs = match Tmpfs::mount(&mnt) {
        Ok(m) => m,
        Err(why) => {
            println!("scenario=disk_full skipped: cannot mount a tmpfs ({why})");
            return;
        }
    };
    let mut rig = Rig::setup(false, Some(mnt.join("state")), "", "");
    rig.start().await;
    let mut out = Outcome::default();
    let mut acked = Vec::new();
    for i in 0..20 {
        let name = format!("before-{i}");
        out.sent += 1;
        assert_eq!(create(&rig, &name).await.code, 201);
        acked.push(name);
    }
    let filler = mnt.join("filler");
    fill(&filler);
    let mut refused = Vec::new();
    for i in 0..scale_writes() {
        let name = format!("full-{i}");
        out.sent += 1;
        let r = create(&rig, &name).await;
        match r.code {
            201 => acked.push(name),
            503 | 507 => {
                assert_eq!(r.body["kind"], "Status", "{}", r.body);
                assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
                refused.push(name);
            }
            c => panic!(
                "create on a full disk answered {c}: {}\n{}",
                r.body,
                rig.log()
            ),
        }
    }
    assert!(!refused.is_empty(), "the disk never filled up");
    // Reads and health keep working.
    let listed = rig.list().await;
    for n in &refused {
        assert!(!listed.contains_key(n), "{n} was refused but stored");
    }
    let h = rig
        .client
        .send(Method::GET, "/healthz", None, Duration::from_secs(3))
        .await;
    assert_eq!(h.unwrap().code, 200);
    // Space returns.
    let t = Instant::now();
    std::fs::remove_file(&filler).unwrap();
    loop {
        let name = format!("after-{}", t.elapsed().as_millis());
        out.sent += 1;
        if create(&rig, &name).await.code == 201 {
            acked.push(name);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "writes did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    out.recovery_ms = t.elapsed().as_millis();
    let all = rig.wait_signed(&acked, Duration::from_secs(20)).await;
    for n in &refused {
        assert!(!all.contains_key(n), "{n} was refused but stored");
    }
    rig.kill9();
    assert_eq!(rig.integrity_check(), "ok");
    out.acknowledged = acked.len();
    out.lost = acked.iter().filter(|n| !all.contains_key(*n)).count();
    out.duplicate_serials = faults::duplicate_serials(all.values()).1;
    assert_eq!(out.lost, 0);
    assert_eq!(out.duplicate_serials, 0);
    println!("refused_while_full={}", refused.len());
    out.print("disk_full");
}

fn scale_writes() -> usize {
    faults::scale(30, 200)
}

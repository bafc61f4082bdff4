//! Fault suite, token side: `kubesigner serve` on p11-kit's client module with SoftHSM behind a
//! `p11-kit server`. The server is killed (outage) or stopped with SIGSTOP (hung device) under
//! signing load; the appliance must say so in `/readyz`, never hang a request, keep every
//! approved CSR, and sign them all by itself once the token is back — no process restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{api_support, faults};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faults::{CSRS, DOWN_BOUND, Outcome, RECOVERY_BOUND, Rig, scale};
use http::Method;
use tokio::sync::watch;

/// `[signer]` for these scenarios: a short sign timeout and keepalive so faults show quickly.
const SIGNER: &str = "sign_timeout = \"2s\"\nkeepalive_interval = \"1s\"";
/// Longest a create may take: the sign timeout plus slack for a loaded 2-core box.
const MAX_CREATE: Duration = Duration::from_secs(15);
/// Longest a one-page list may take during a fault (it is O(stored CSRs) in the store today).
const LIST_BOUND: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Load {
    sent: usize,
    acked: Vec<String>,
    slowest: Duration,
    errors: Vec<String>,
}

/// Creates node CSRs (bootstrap token, auto-approved) on `workers` tasks until `stop`.
fn spawn_load(
    rig: &Rig,
    prefix: &str,
    workers: usize,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let load = Arc::new(Mutex::new(Load::default()));
    LOAD.lock().unwrap().replace(Arc::clone(&load));
    (0..workers)
        .map(|w| {
            let (client, stop, load) = (rig.client.clone(), stop.clone(), Arc::clone(&load));
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                let mut i = 0;
                while !*stop.borrow() {
                    let name = format!("{prefix}-{w}-{i}");
                    let body = api_support::node_csr(&name, &name);
                    let t = Instant::now();
                    let r = client
                        .send(Method::POST, CSRS, Some(&body), Duration::from_secs(30))
                        .await;
                    let took = t.elapsed();
                    let mut l = load.lock().unwrap();
                    l.sent += 1;
                    l.slowest = l.slowest.max(took);
                    match r {
                        Ok(r) if r.code == 201 => l.acked.push(name),
                        Ok(r) => l.errors.push(format!("{}: {}", r.code, r.body)),
                        Err(e) => l.errors.push(e),
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

static LOAD: Mutex<Option<Arc<Mutex<Load>>>> = Mutex::new(None);

fn take_load() -> Load {
    let l = LOAD.lock().unwrap().take().unwrap();
    std::mem::take(&mut *l.lock().unwrap())
}

async fn finish(handles: Vec<tokio::task::JoinHandle<()>>, stop: watch::Sender<bool>) -> Load {
    stop.send(true).unwrap();
    for h in handles {
        h.await.unwrap();
    }
    take_load()
}

/// While the token is down, the API answers: probes within 2 s, a one-page read within
/// [`LIST_BOUND`] (a list scans every stored CSR: tens of thousands pile up in a full run).
async fn api_answers(rig: &Rig) {
    let page = format!("{CSRS}?limit=50");
    for path in ["/healthz", "/livez", "/readyz", page.as_str()] {
        let bound = if path == page {
            LIST_BOUND
        } else {
            Duration::from_secs(2)
        };
        let t = Instant::now();
        let r = rig
            .admin
            .send(Method::GET, path, None, bound + Duration::from_secs(1))
            .await
            .unwrap_or_else(|e| panic!("{path} did not answer: {e}\n{}", rig.log()));
        assert!(r.code == 200 || r.code == 503, "{path}: {}", r.code);
        assert!(t.elapsed() < bound, "{path} took {:?}", t.elapsed());
        if path == page {
            println!("list page during the fault: {} ms", t.elapsed().as_millis());
        }
    }
}

async fn check_all_signed(rig: &mut Rig, load: &Load, pid: u32, out: &mut Outcome) {
    assert!(
        load.errors.is_empty(),
        "failed creates: {:?}",
        &load.errors[..load.errors.len().min(5)]
    );
    assert!(
        load.slowest < MAX_CREATE,
        "a create took {:?} (hang)",
        load.slowest
    );
    let all = rig.wait_signed(&load.acked, Duration::from_secs(15)).await;
    let (_, dups) = faults::duplicate_serials(all.values());
    assert_eq!(rig.pid(), pid, "the appliance was restarted");
    assert!(rig.child.as_mut().unwrap().try_wait().unwrap().is_none());
    out.sent = load.sent;
    out.acknowledged = load.acked.len();
    out.lost = load.acked.iter().filter(|n| !all.contains_key(*n)).count();
    out.duplicate_serials = dups;
    assert_eq!(out.lost, 0);
    assert_eq!(dups, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_outage_under_load_recovers_without_restart() {
    let mut rig = Rig::setup(true, None, SIGNER, "");
    rig.start_hsm();
    rig.start().await;
    let pid = rig.pid();
    let outages = scale(1, 5);
    let (stop_tx, stop) = watch::channel(false);
    let handles = spawn_load(&rig, "outage", 4, stop);
    let mut out = Outcome::default();
    for _ in 0..outages {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rig.kill_hsm();
        let down = rig.wait_readyz(503, DOWN_BOUND).await;
        println!("readyz 503 after {} ms", down.as_millis());
        api_answers(&rig).await;
        tokio::time::sleep(scale(Duration::from_secs(3), Duration::from_secs(20))).await;
        rig.start_hsm();
        let back = rig.wait_readyz(200, RECOVERY_BOUND).await;
        out.recovery_ms = out.recovery_ms.max(back.as_millis());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let load = finish(handles, stop_tx).await;
    check_all_signed(&mut rig, &load, pid, &mut out).await;
    out.print("hsm_outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_hsm_times_out_and_recovers_after_sigcont() {
    let mut rig = Rig::setup(true, None, SIGNER, "");
    rig.start_hsm();
    rig.start().await;
    let pid = rig.pid();
    let (stop_tx, stop) = watch::channel(false);
    let handles = spawn_load(&rig, "hung", 2, stop);
    let mut out = Outcome::default();
    for _ in 0..scale(1, 3) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rig.signal_hsm("-STOP");
        // sign_timeout (2 s) plus the probe's own period.
        let down = rig.wait_readyz(503, DOWN_BOUND).await;
        println!("readyz 503 after {} ms", down.as_millis());
        api_answers(&rig).await;
        tokio::time::sleep(scale(Duration::from_secs(3), Duration::from_secs(15))).await;
        rig.signal_hsm("-CONT");
        let back = rig.wait_readyz(200, RECOVERY_BOUND).await;
        out.recovery_ms = out.recovery_ms.max(back.as_millis());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let load = finish(handles, stop_tx).await;
    check_all_signed(&mut rig, &load, pid, &mut out).await;
    out.print("hung_hsm");
}

/// Keepalive is on in `serve`: with no signing at all, a token that goes away is noticed by the
/// keepalive call (`[signer] keepalive_interval`, 1 s here) and `/readyz` turns 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_token_loss_is_seen_by_the_keepalive() {
    let mut rig = Rig::setup(true, None, SIGNER, "");
    rig.start_hsm();
    rig.start().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.kill_hsm();
    let down = rig.wait_readyz(503, DOWN_BOUND).await;
    rig.start_hsm();
    let back = rig.wait_readyz(200, RECOVERY_BOUND).await;
    assert!(rig.log().contains("PKCS#11 signer down"), "{}", rig.log());
    println!(
        "keepalive: readyz 503 after {} ms idle, 200 again {} ms after the token returned",
        down.as_millis(),
        back.as_millis()
    );
}

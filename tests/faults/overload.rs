//! Fault suite: overload. Far more concurrent requests than the server admits, a flood of idle
//! TCP connections that never start TLS: requests past the limit get 429/503 with
//! `Retry-After`, health endpoints keep answering, unfinished handshakes are closed after the
//! handshake timeout, memory stays bounded, and every acknowledged CSR is signed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{api_support, faults};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faults::{CSRS, Outcome, Rig, scale};
use http::Method;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// `[server]` for this scenario: a small in-flight limit and short slow-client timeouts.
const SERVER: &str = "max_requests_in_flight = 8\nhandshake_timeout = \"2s\"\n\
header_read_timeout = \"2s\"\nbody_read_timeout = \"2s\"";
/// Idle TCP connections opened (issue 8: at least 1,000).
const IDLE: usize = 1200;
/// RSS growth allowed during the flood (KiB).
const MAX_RSS_GROWTH_KIB: u64 = 256 * 1024;

#[derive(Default)]
struct Tally {
    sent: usize,
    acked: Vec<String>,
    refused: usize,
    bad: Vec<String>,
}

/// `/readyz` must answer 200 within 5 s while the flood runs.
async fn readyz_within_5s(client: &faults::Http) -> Duration {
    let t = Instant::now();
    let r = client
        .send(Method::GET, "/readyz", None, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("/readyz: {e}"));
    assert_eq!(r.code, 200);
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_bounded_and_health_answers() {
    let mut rig = Rig::setup(false, None, "", SERVER);
    rig.start().await;
    let rss_before = rig.rss_kib();

    // The flood comes from 127.0.0.1; the probes and the request load from 127.0.0.2 (one
    // address holds at most a quarter of the connection slots, `max_connections_per_address`).
    let client = rig.client.with_source("127.0.0.2".parse().unwrap());
    // 1. Idle TCP connections that never send a byte.
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(rig.addr).await.unwrap());
    }
    let first = readyz_within_5s(&client).await;
    println!(
        "readyz with {IDLE} idle connections: {} ms",
        first.as_millis()
    );

    // 2. A request flood: many more concurrent creators than the in-flight limit.
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = (0..scale(64, 256))
        .map(|w| {
            let (client, stop, tally) = (client.clone(), stop.clone(), Arc::clone(&tally));
            tokio::spawn(async move {
                let mut i = 0;
                while !*stop.borrow() {
                    let name = format!("flood-{w}-{i}");
                    i += 1;
                    let body = api_support::node_csr(&name, &name);
                    let r = client
                        .send(Method::POST, CSRS, Some(&body), Duration::from_secs(30))
                        .await;
                    let mut t = tally.lock().unwrap();
                    t.sent += 1;
                    match r {
                        Ok(r) if r.code == 201 => t.acked.push(name),
                        Ok(r)
                            if (r.code == 429 || r.code == 503)
                                && r.headers.contains_key("retry-after") =>
                        {
                            t.refused += 1;
                        }
                        Ok(r) => t.bad.push(format!("{} {:?} {}", r.code, r.headers, r.body)),
                        Err(e) => t.bad.push(e),
                    }
                }
            })
        })
        .collect();
    let flood = scale(Duration::from_secs(8), Duration::from_secs(60));
    let start = Instant::now();
    let mut worst = first;
    let mut peak_rss = rss_before;
    while start.elapsed() < flood {
        tokio::time::sleep(Duration::from_millis(500)).await;
        worst = worst.max(readyz_within_5s(&client).await);
        for path in ["/healthz", "/livez"] {
            let r = client
                .send(Method::GET, path, None, Duration::from_secs(5))
                .await;
            assert_eq!(r.map(|r| r.code).ok(), Some(200), "{path}");
        }
        peak_rss = peak_rss.max(rig.rss_kib());
    }
    stop_tx.send(true).unwrap();
    for w in workers {
        w.await.unwrap();
    }

    // 3. The idle connections were closed by the handshake timeout (2 s, long passed).
    let mut closed = 0;
    for s in idle.iter_mut().take(50) {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_secs(1), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    drop(idle);
    assert_eq!(
        closed, 50,
        "connections without a TLS handshake must be closed"
    );

    let t = std::mem::take(&mut *tally.lock().unwrap());
    println!(
        "flood: sent={} created={} refused_with_retry_after={} readyz_worst_ms={} rss_kib={}..{}",
        t.sent,
        t.acked.len(),
        t.refused,
        worst.as_millis(),
        rss_before,
        peak_rss
    );
    assert!(
        t.bad.is_empty(),
        "{} bad answers, first: {:?}",
        t.bad.len(),
        t.bad.first()
    );
    assert!(
        t.refused > 0,
        "nothing was refused: the limit never applied"
    );
    assert!(
        peak_rss - rss_before < MAX_RSS_GROWTH_KIB,
        "RSS grew {} KiB",
        peak_rss - rss_before
    );
    let all = rig.wait_signed(&t.acked, Duration::from_secs(30)).await;
    let out = Outcome {
        sent: t.sent,
        acknowledged: t.acked.len(),
        lost: t.acked.iter().filter(|n| !all.contains_key(*n)).count(),
        duplicate_serials: faults::duplicate_serials(all.values()).1,
        recovery_ms: worst.as_millis(),
    };
    assert_eq!(out.lost, 0);
    assert_eq!(out.duplicate_serials, 0);
    out.print("overload");
}

/// A client that completes TLS but then sends its headers slowly is cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshake_is_closed_after_the_timeout() {
    let mut rig = Rig::setup(false, None, "", SERVER);
    rig.start().await;
    let mut s = TcpStream::connect(rig.addr).await.unwrap();
    let t = Instant::now();
    let mut b = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(20), s.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0) | Err(_))), "not closed: {r:?}");
    let took = t.elapsed();
    println!(
        "handshake timeout closed the connection after {} ms",
        took.as_millis()
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

/// A client that sends its headers and then stalls in the body is answered (400) after
/// `[server] body_read_timeout` and does not keep its request slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_is_cut_off_after_the_timeout() {
    use tokio::io::AsyncWriteExt;
    let mut rig = Rig::setup(false, None, "", SERVER);
    rig.start().await;
    // More stalled bodies than request slots (8): the slots must come back.
    let mut stalled = Vec::new();
    for _ in 0..12 {
        let mut tls = rig.client.tls_stream().await;
        let head = format!(
            "POST {CSRS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{\"kind\":",
            rig.client.token()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        stalled.push(tls);
    }
    let t = Instant::now();
    let mut answers = Vec::new();
    for mut tls in stalled {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(6), tls.read(&mut buf))
            .await
            .expect("a stalled body was never answered")
            .unwrap_or(0);
        answers.push(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_owned(),
        );
    }
    let took = t.elapsed();
    println!(
        "stalled bodies answered after {} ms: {:?}",
        took.as_millis(),
        answers.first()
    );
    assert!(
        answers
            .iter()
            .all(|a| a.starts_with("HTTP/1.1 400") || a.starts_with("HTTP/1.1 429")),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| a.starts_with("HTTP/1.1 400")),
        "{answers:?}"
    );
    // The slots are free again.
    let body = api_support::node_csr("after-slow", "after-slow");
    let r = rig
        .client
        .send(Method::POST, CSRS, Some(&body), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, 201, "{}", r.body);
}

//! The edge under attack: silent connections (TLS done, then nothing; or only the HTTP/2
//! preface and SETTINGS; or one request and then silence) are closed after
//! `header_read_timeout` / `idle_timeout`, so `/readyz` and an administrator still get in with
//! every connection slot taken; one source address holds at most
//! `max_connections_per_address`; one identity's slow bodies take at most its share of the
//! request slots, administrators keep theirs, and `/metrics` shows the slots by class.
//! About 15 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::faults;

use std::time::{Duration, Instant};

use faults::{CSRS, Rig};
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The HTTP/2 client preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Reads until EOF (or an error); returns how long that took, or `None` past `within`.
async fn closed_within<S: AsyncReadExt + Unpin>(s: &mut S, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_admins_still_get_in() {
    let server = "max_connections = 20\nmax_connections_per_address = 20\n\
                  handshake_timeout = \"2s\"\nheader_read_timeout = \"2s\"\nidle_timeout = \"1s\"";
    let mut rig = Rig::setup(false, None, "", server);
    rig.start().await;
    // Every connection slot: TLS done, then silence (HTTP/1.1), the h2 preface + SETTINGS
    // only, or one request and then silence.
    let mut silent = Vec::new();
    for i in 0..20 {
        let mut tls = rig.client.tls_stream().await;
        match i % 3 {
            0 => {}
            1 => tls.write_all(H2_PREFACE).await.unwrap(),
            _ => {
                tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .await
                    .unwrap();
                let mut buf = [0u8; 512];
                let n = tls.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            }
        }
        tls.flush().await.unwrap();
        silent.push(tls);
    }
    let t = Instant::now();
    let ready = rig
        .admin
        .send(Method::GET, "/readyz", None, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ready.code, 200);
    let list = rig
        .admin
        .send(Method::GET, CSRS, None, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(list.code, 200, "{}", list.body);
    println!(
        "edge: /readyz and an admin list answered {} ms after 20 silent connections",
        t.elapsed().as_millis()
    );
    for (i, s) in silent.iter_mut().enumerate() {
        let took = closed_within(s, Duration::from_secs(30)).await;
        assert!(took.is_some(), "silent connection {i} was never closed");
    }
    let metrics = rig
        .admin
        .send(Method::GET, "/metrics", None, Duration::from_secs(30))
        .await
        .unwrap();
    let text = metrics.body.as_str().unwrap().to_owned();
    for reason in ["first_request_deadline", "idle_timeout"] {
        assert!(
            text.contains(&format!(
                "kubesigner_connections_closed_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let server = "max_connections = 50\nmax_connections_per_address = 4\n\
                  header_read_timeout = \"30s\"\nidle_timeout = \"60s\"";
    let mut rig = Rig::setup(false, None, "", server);
    rig.start().await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(rig.client.tls_stream().await);
    }
    // A fifth from the same address is closed at once (long before any deadline).
    let mut fifth = tokio::net::TcpStream::connect(rig.addr).await.unwrap();
    let took = closed_within(&mut fifth, Duration::from_secs(10)).await;
    assert!(
        took.is_some(),
        "a fifth connection from one address stayed open"
    );
    // Another address still gets in.
    let other = rig.admin.with_source("127.0.0.2".parse().unwrap());
    let r = other
        .send(Method::GET, CSRS, None, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.code, 200);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_of_one_identity_leave_slots_for_admins() {
    // 40 slots: one identity may hold 20, 4 are the administrators'.
    let server = "max_requests_in_flight = 40\nbody_read_timeout = \"30s\"\nmax_connections = 200";
    let mut rig = Rig::setup(false, None, "", server);
    rig.start().await;
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut tls = rig.client.tls_stream().await;
        let head = format!(
            "POST {CSRS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
            rig.client.token()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        stalled.push(tls);
    }
    // Those past the share are refused at once with 429; the others hold their slot.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut refused = 0;
    for tls in &mut stalled {
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), tls.read(&mut buf)).await
        {
            assert!(
                buf[..n].starts_with(b"HTTP/1.1 429"),
                "{:?}",
                String::from_utf8_lossy(&buf[..n])
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 20, "one identity held more than its share");
    let t = Instant::now();
    let list = rig
        .admin
        .send(Method::GET, CSRS, None, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(list.code, 200, "{}", list.body);
    println!(
        "fair share: admin list answered in {} ms",
        t.elapsed().as_millis()
    );
    let metrics = rig
        .admin
        .send(Method::GET, "/metrics", None, Duration::from_secs(10))
        .await
        .unwrap();
    let text = metrics.body.as_str().unwrap().to_owned();
    assert!(
        text.contains("kubesigner_slots_in_use{pool=\"requests\",class=\"user\"} 20"),
        "{text}"
    );
    drop(stalled);
}

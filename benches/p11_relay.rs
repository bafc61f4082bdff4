//! Latency-injecting PKCS#11 relay for `bench/run`'s slow-token phase (not a test, not a
//! micro-benchmark): sits between p11-kit's client module (`p11-kit-client.so`) and
//! `p11-kit server`, so that a local SoftHSM token answers like a network HSM.
//!
//!     p11_relay --listen RELAY.sock --upstream P11KIT.sock [--delay-us US]
//!
//! Each client connection gets its own connection to the real server socket. Every chunk the
//! client writes is stamped when it is read and forwarded `US` microseconds later (default
//! 10,000), in order: a delay line, so messages already written by other threads of the client
//! are in flight at the same time (latency, not a rate limit). The server's answers are
//! forwarded at once. One added delay per request therefore means one per PKCS#11 round trip.
//! Tokio's timer rounds each deadline up to the next millisecond, so a chunk waits between
//! US and US + 1 ms.
//!
//! The relay parses the client→server stream (p11-kit RPC: one version byte, then frames of a
//! 12-byte header — call code, options length, body length, big-endian — options, and a body
//! starting with the call id) to count calls. On SIGUSR1 it prints one cumulative line:
//! `calls total=N C_Sign=N C_SignInit=N ...` (calls with a non-zero count, by name).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/support/delay_line.rs"]
mod delay_line;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UnixListener;

/// p11-kit's RPC call ids (`p11-kit/rpc-message.h`), in id order.
const CALLS: &[&str] = &[
    "ERROR",
    "C_Initialize",
    "C_Finalize",
    "C_GetInfo",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_OpenSession",
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_GetSessionInfo",
    "C_InitPIN",
    "C_SetPIN",
    "C_GetOperationState",
    "C_SetOperationState",
    "C_Login",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetObjectSize",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_FindObjectsInit",
    "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit",
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
    "C_DecryptInit",
    "C_Decrypt",
    "C_DecryptUpdate",
    "C_DecryptFinal",
    "C_DigestInit",
    "C_Digest",
    "C_DigestUpdate",
    "C_DigestKey",
    "C_DigestFinal",
    "C_SignInit",
    "C_Sign",
    "C_SignUpdate",
    "C_SignFinal",
    "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyInit",
    "C_Verify",
    "C_VerifyUpdate",
    "C_VerifyFinal",
    "C_VerifyRecoverInit",
    "C_VerifyRecover",
    "C_DigestEncryptUpdate",
    "C_DecryptDigestUpdate",
    "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey",
    "C_GenerateKeyPair",
    "C_WrapKey",
    "C_UnwrapKey",
    "C_DeriveKey",
    "C_SeedRandom",
    "C_GenerateRandom",
    "C_WaitForSlotEvent",
];

struct Counts {
    calls: Vec<AtomicU64>,
    /// Frames whose call id is not in `CALLS`, or connections whose framing did not parse.
    unknown: AtomicU64,
}

impl Counts {
    fn line(&self) -> String {
        let mut total = 0;
        let mut parts = String::new();
        for (name, n) in CALLS.iter().zip(&self.calls) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                total += n;
                parts.push_str(&format!(" {name}={n}"));
            }
        }
        let unknown = self.unknown.load(Ordering::Relaxed);
        format!("calls total={total}{parts} unknown={unknown}")
    }
}

/// Where the parser is in the client→server byte stream.
enum State {
    /// The version byte the client sends first.
    Version,
    Header(Vec<u8>),
    /// Skipping the options; then the body of this length.
    Options(usize, usize),
    /// Reading the body's first four bytes (the call id); then the rest of the body.
    Id(Vec<u8>, usize),
    Body(usize),
    /// The framing did not parse; count nothing more on this connection.
    Lost,
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

impl State {
    fn feed(&mut self, mut data: &[u8], counts: &Counts) {
        while !data.is_empty() {
            match self {
                State::Version => {
                    data = &data[1..];
                    *self = State::Header(Vec::with_capacity(12));
                }
                State::Header(h) => {
                    let take = (12 - h.len()).min(data.len());
                    h.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if h.len() == 12 {
                        let (olen, dlen) = (be32(&h[4..8]), be32(&h[8..12]));
                        if dlen < 4 || olen > 1 << 24 || dlen > 1 << 26 {
                            counts.unknown.fetch_add(1, Ordering::Relaxed);
                            *self = State::Lost;
                        } else {
                            *self = State::Options(olen, dlen);
                        }
                    }
                }
                State::Options(olen, dlen) => {
                    let take = (*olen).min(data.len());
                    data = &data[take..];
                    *olen -= take;
                    if *olen == 0 {
                        *self = State::Id(Vec::with_capacity(4), *dlen - 4);
                    }
                }
                State::Id(id, rest) => {
                    let take = (4 - id.len()).min(data.len());
                    id.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if id.len() == 4 {
                        match counts.calls.get(be32(id)) {
                            Some(c) => c.fetch_add(1, Ordering::Relaxed),
                            None => counts.unknown.fetch_add(1, Ordering::Relaxed),
                        };
                        *self = State::Body(*rest);
                    }
                }
                State::Body(rest) => {
                    let take = (*rest).min(data.len());
                    data = &data[take..];
                    *rest -= take;
                    if *rest == 0 {
                        *self = State::Header(Vec::with_capacity(12));
                    }
                }
                State::Lost => return,
            }
        }
    }
}

struct Args {
    listen: String,
    upstream: String,
    delay: Duration,
}

fn args() -> Args {
    let mut a = Args {
        listen: String::new(),
        upstream: String::new(),
        delay: Duration::from_millis(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--bench" => {}
            "--listen" => a.listen = it.next().unwrap(),
            "--upstream" => a.upstream = it.next().unwrap(),
            "--delay-us" => a.delay = Duration::from_micros(it.next().unwrap().parse().unwrap()),
            other => panic!("p11_relay: unknown argument {other}"),
        }
    }
    assert!(
        !a.listen.is_empty() && !a.upstream.is_empty(),
        "usage: p11_relay --listen PATH --upstream PATH [--delay-us US]"
    );
    a
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let counts = Arc::new(Counts {
        calls: CALLS.iter().map(|_| AtomicU64::new(0)).collect(),
        unknown: AtomicU64::new(0),
    });
    let _ = std::fs::remove_file(&a.listen);
    let listener = UnixListener::bind(&a.listen).unwrap();
    let mut usr1 =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).unwrap();
    eprintln!(
        "p11_relay: {} -> {}, client->server delay {:?}",
        a.listen, a.upstream, a.delay
    );
    loop {
        tokio::select! {
            _ = usr1.recv() => println!("{}", counts.line()),
            accepted = listener.accept() => {
                let (client, _) = accepted.unwrap();
                let upstream = a.upstream.clone();
                let counts = counts.clone();
                let delay = a.delay;
                let mut state = State::Version;
                let seen = move |chunk: &[u8]| state.feed(chunk, &counts);
                tokio::spawn(async move {
                    if let Err(e) = delay_line::delay_line(client, upstream.as_ref(), delay, seen).await {
                        eprintln!("p11_relay: connection: {e}");
                    }
                });
            }
        }
    }
}

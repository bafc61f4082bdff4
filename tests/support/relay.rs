//! In-test relays for the controller tests, each on its own thread and runtime:
//! - [`DelayRelay`]: a Unix-socket delay line between p11-kit's client module and
//!   `p11-kit server` (the delay line of benches/p11_relay.rs, `delay_line.rs`), so one
//!   replica's token answers like a network HSM.
//! - [`StallProxy`]: a TCP proxy in front of the cluster stand-in that can stop moving bytes
//!   (a replica whose API connection stalls, without killing it).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::oneshot;

/// A relay thread; stopped when dropped.
struct Thread {
    stop: Option<oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl Thread {
    fn spawn<F>(serve: impl FnOnce() -> F + Send + 'static) -> Thread
    where
        F: std::future::Future<Output = ()>,
    {
        let (stop, stopped) = oneshot::channel();
        let join = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tokio::select! {
                    _ = stopped => {}
                    () = serve() => {}
                }
            });
        });
        Thread {
            stop: Some(stop),
            join: Some(join),
        }
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// A Unix-socket delay line: `listen` → (delay) → `upstream`.
pub struct DelayRelay {
    pub listen: PathBuf,
    _thread: Thread,
}

impl DelayRelay {
    pub fn start(listen: &Path, upstream: &Path, delay: Duration) -> DelayRelay {
        let _ = std::fs::remove_file(listen);
        let std_listener = std::os::unix::net::UnixListener::bind(listen).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let upstream = upstream.to_owned();
        let thread = Thread::spawn(move || async move {
            let listener = UnixListener::from_std(std_listener).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = super::delay_line::delay_line(client, &upstream, delay, |_| {}).await;
                });
            }
        });
        DelayRelay {
            listen: listen.to_owned(),
            _thread: thread,
        }
    }
}

/// A TCP proxy to `upstream` that stops moving bytes (both ways) while stalled.
pub struct StallProxy {
    pub addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    _thread: Thread,
}

impl StallProxy {
    pub fn start(upstream: &str) -> StallProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stalled);
        let upstream = upstream.to_owned();
        let thread = Thread::spawn(move || async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let (upstream, flag) = (upstream.clone(), Arc::clone(&flag));
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (crd, cwr) = client.into_split();
                    let (srd, swr) = server.into_split();
                    let up = tokio::spawn(pump(crd, swr, Arc::clone(&flag)));
                    let _ = pump(srd, cwr, flag).await;
                    up.abort();
                });
            }
        });
        StallProxy {
            addr,
            stalled,
            _thread: thread,
        }
    }

    /// Stops (true) or resumes (false) all traffic.
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    stalled: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        // Bytes read just before a stall are held until it ends.
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        to.write_all(&buf[..n]).await?;
    }
}

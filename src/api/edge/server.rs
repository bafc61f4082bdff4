//! The HTTPS listener: the accept loop (connection caps, per-address caps, TCP_NODELAY), and
//! one connection's TLS handshake and HTTP/1.1 or h2 service under the edge deadlines. The
//! appliance's wiring (`app::serve`) binds it with [`listen`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::conn::{Activity, PerAddress, TrackedBody};
use crate::api::Api;

/// How long graceful shutdown waits for open connections (watches end at once).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Concurrent h2 streams per connection (hyper's default is 200; a kubelet uses a handful).
const MAX_H2_STREAMS: u32 = 100;

/// The listen address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub source: std::io::Error,
}

/// A bound listener serving the API until [`Listening::stop`].
#[derive(Debug)]
pub struct Listening {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    accept: JoinHandle<()>,
}

impl Listening {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and lets open connections finish (up to a grace period).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.accept).await;
    }
}

/// Binds `[server] listen` and serves `api` over TLS on it.
pub async fn listen(
    s: &crate::config::ServerConfig,
    tls: Arc<rustls::ServerConfig>,
    api: Api,
) -> Result<Listening, BindError> {
    let bind = |source| BindError {
        addr: s.listen,
        source,
    };
    let listener = TcpListener::bind(s.listen).await.map_err(bind)?;
    let local_addr = listener.local_addr().map_err(bind)?;
    let (stop, stopped) = oneshot::channel();
    let accept = tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls),
        api,
        ConnSettings::from(s),
        stopped,
    ));
    Ok(Listening {
        local_addr,
        stop: Some(stop),
        accept,
    })
}

#[derive(Debug, Clone, Copy)]
struct ConnSettings {
    max_connections: usize,
    per_address: usize,
    handshake: Duration,
    headers: Duration,
    idle: Duration,
    h2_keepalive: Duration,
}

impl ConnSettings {
    fn from(s: &crate::config::ServerConfig) -> ConnSettings {
        ConnSettings {
            max_connections: s.max_connections,
            per_address: s
                .max_connections_per_address
                .unwrap_or((s.max_connections / 4).max(1)),
            handshake: s.handshake_timeout,
            headers: s.header_read_timeout,
            idle: s.idle_timeout,
            h2_keepalive: s.http2_keepalive_interval,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    api: Api,
    conn: ConnSettings,
    mut stop: oneshot::Receiver<()>,
) {
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Semaphore::new(conn.max_connections));
    let per_address = PerAddress::new(conn.per_address);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(address_slot) = per_address.try_acquire(peer.ip().to_canonical()) else {
            super::conn::closed("per_address_cap");
            tracing::debug!(%peer, "connection cap for this address reached");
            drop(tcp);
            continue;
        };
        // Answers are small and written whole: send them at once instead of waiting for the
        // peer's delayed ACK (Nagle), which adds up to 40 ms to a keep-alive request.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let (acceptor, api, shutdown) = (acceptor.clone(), api.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _slots = (permit, address_slot);
            serve_one(tcp, peer, acceptor, api, conn, shutdown).await;
        });
    }
    drop(listener);
    let _ = shutdown_tx.send(true);
    // Every connection task holds a slot until it ends.
    let all = u32::try_from(conn.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(
        SHUTDOWN_GRACE + Duration::from_secs(1),
        slots.acquire_many(all),
    )
    .await
    .is_err()
    {
        tracing::warn!("connections still open after the grace period");
    }
}

/// One connection: TLS, then HTTP/1.1 or h2 under the edge deadlines (`conn::drive`).
async fn serve_one(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    api: Api,
    conn: ConnSettings,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(conn.handshake, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => {
            super::conn::closed("handshake_timeout");
            return tracing::debug!(%peer, "TLS handshake timed out");
        }
    };
    let chain: Option<Arc<Vec<CertificateDer<'static>>>> = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect()));
    let activity = Activity::new();
    let tracked = Arc::clone(&activity);
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let in_flight = tracked.begin();
        req.extensions_mut()
            .insert(super::peer::PeerAddr(peer.ip().to_canonical()));
        let (api, chain) = (api.clone(), chain.clone());
        async move {
            let resp = api.handle(req, chain.as_deref().map(Vec::as_slice)).await;
            Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, in_flight)))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(conn.headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .keep_alive_interval(conn.h2_keepalive)
        .keep_alive_timeout(conn.h2_keepalive);
    let served = builder.serve_connection(TokioIo::new(tls), svc);
    let result = super::conn::drive(
        served,
        |c| c.graceful_shutdown(),
        &activity,
        conn.headers,
        conn.idle,
        shutdown,
    )
    .await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

//! `kubesigner controller --metrics-address`: `/metrics` (and nothing else) over plain HTTP/1.1
//! for Prometheus. The controller has no API server of its own; this serves only the
//! process-wide counts (no CSR contents, names or secrets), as `serve`'s anonymous `/metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Longest a scrape connection may take to send its request head (a slow client must not hold
/// a task for ever).
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn answer(req: Request<Incoming>, hsm_up: bool) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = if req.uri().path() == "/metrics" && req.method() == http::Method::GET {
        let m = crate::metrics::global();
        m.hsm_up.set(i64::from(hsm_up));
        Response::new(Full::new(Bytes::from(m.render())))
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}

/// Binds `addr` and serves until the task is aborted.
pub async fn spawn(
    addr: SocketAddr,
    ready: crate::controller::HealthFn,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors or the like: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let ready = std::sync::Arc::clone(&ready);
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(req, ready()));
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), svc);
                let _ = conn.await;
            });
        }
    }))
}

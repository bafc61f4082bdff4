//! One connection at the edge, with deadlines: the TLS handshake within `handshake_timeout`
//! of accept; protocol detection and the first request's headers within
//! `header_read_timeout` of the handshake (HTTP/1.1 and HTTP/2 alike); no request in flight for
//! `idle_timeout` closes it (a silent HTTP/2 peer that only answers pings, an idle keep-alive);
//! HTTP/2 keep-alive pings find dead peers under long watches. A cap per source address keeps
//! one host from holding every connection slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api::body::ResponseBody;
use crate::metrics::{ReasonLabels, global};

/// How long a connection may take to finish its requests once the server shuts down.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long an expired connection (nothing in flight) may take to say goodbye (HTTP/2 GOAWAY
/// waits for a PING answer a silent peer never sends).
const EXPIRED_GRACE: Duration = Duration::from_millis(500);

/// Counts a connection closed by the edge.
pub fn closed(reason: &'static str) {
    global()
        .connections_closed
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

/// Concurrent connections per source address.
#[derive(Debug, Clone)]
pub struct PerAddress {
    cap: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection counted against its address; released on drop.
#[derive(Debug)]
pub struct AddressSlot {
    limiter: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    /// At most `cap` connections per address.
    pub fn new(cap: usize) -> PerAddress {
        PerAddress {
            cap: cap.max(1),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Counts a connection from `ip`, or `None` when that address is at its cap.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<AddressSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limiter.open.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Requests in flight on one connection (a request lasts until its response body ends) and
/// when the last one ended.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    seen_request: std::sync::atomic::AtomicBool,
    last_end: Mutex<Instant>,
    changed: Notify,
}

impl Activity {
    /// A connection whose handshake just ended.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            seen_request: std::sync::atomic::AtomicBool::new(false),
            last_end: Mutex::new(Instant::now()),
            changed: Notify::new(),
        })
    }

    /// A request's headers are in; the guard ends it (put it in the response body).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.seen_request.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        InFlight(Arc::clone(self))
    }

    /// Resolves when the connection has been without a request for its deadline:
    /// `first` until the first request's headers arrive, then `idle`. Returns the reason.
    pub async fn expired(&self, first: Duration, idle: Duration) -> &'static str {
        loop {
            let notified = self.changed.notified();
            if self.in_flight.load(Ordering::Acquire) > 0 {
                notified.await;
                continue;
            }
            let (limit, reason) = if self.seen_request.load(Ordering::Acquire) {
                (idle, "idle_timeout")
            } else {
                (first, "first_request_deadline")
            };
            let since = self
                .last_end
                .lock()
                .map(|t| *t)
                .unwrap_or_else(|_| Instant::now());
            let deadline = since + limit;
            if Instant::now() >= deadline {
                return reason;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// A request in flight; its end is recorded on drop.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.last_end.lock() {
            *t = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request in flight until the body ends or is dropped.
pub struct TrackedBody {
    inner: ResponseBody,
    guard: Option<InFlight>,
}

impl TrackedBody {
    /// Wraps `inner`, holding `guard` until the body is done.
    pub fn new(inner: ResponseBody, guard: InFlight) -> TrackedBody {
        TrackedBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Drives `conn` until it ends, the connection expires (see [`Activity::expired`]) or the
/// server shuts down; then closes it gracefully (bounded by [`CLOSE_GRACE`]).
pub async fn drive<C, E>(
    conn: C,
    graceful: impl FnOnce(Pin<&mut C>),
    activity: &Activity,
    first: Duration,
    idle: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    let stop = async {
        tokio::select! {
            reason = activity.expired(first, idle) => Some(reason),
            _ = shutdown.wait_for(|s| *s) => None,
        }
    };
    let grace = tokio::select! {
        r = conn.as_mut() => return r,
        reason = stop => match reason {
            Some(reason) => {
                closed(reason);
                tracing::debug!(reason, "closing connection");
                EXPIRED_GRACE
            }
            None => CLOSE_GRACE,
        }
    };
    graceful(conn.as_mut());
    match tokio::time::timeout(grace, conn).await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

//! Watch: newline-delimited JSON events (reference §6.5), from a resourceVersion (replayed from
//! the store's event window, or one ERROR event 410 Expired when too old, as kube-apiserver) or from now (current objects as
//! ADDED), bookmarks when asked, closed after a bounded timeout. The watch-list form that
//! client-go ≥ 1.35 uses by default (`sendInitialEvents=true&resourceVersionMatch=NotOlderThan`,
//! reference §4.3) sends the current objects as ADDED, then a BOOKMARK annotated
//! `k8s.io/initial-events-end: "true"`, then changes.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::list::Selectors;
use super::table;
use crate::api::body::ResponseBody;
use crate::api::codec::request::Query;
use crate::api::error::ApiError;
use crate::api::hooks::{Caller, Verb};
use crate::api::{Api, blocking};
use crate::store::{Event, EventKind};

/// Events buffered per watch before the writer waits for the client.
const WATCH_BUFFER: usize = 16;
/// Bookmark interval (kube-apiserver sends one about every minute).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// The streamed response body: frames from the watch task. Dropped by hyper when the client
/// goes away, which the task sees at once (`Sender::closed`) and ends, freeing its watch slot.
struct WatchBody(mpsc::Receiver<Bytes>);

impl http_body::Body for WatchBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

struct Watcher {
    api: Api,
    caller: Caller,
    selectors: Selectors,
    as_table: bool,
    bookmarks: bool,
    /// Watch-list: the bookmark after the initial events carries the initial-events-end mark.
    initial_events_end: bool,
    _permit: crate::api::edge::admission::Slot,
}

/// The annotation that ends the initial events of a watch-list (`sendInitialEvents=true`).
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

fn event_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Added => "ADDED",
        EventKind::Modified => "MODIFIED",
        EventKind::Deleted => "DELETED",
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

impl Watcher {
    fn object(&self, csr: &CertificateSigningRequest, rv: u64) -> Value {
        if self.as_table {
            table::table(&[csr], rv, None, super::now_unix())
        } else {
            serde_json::to_value(csr).unwrap_or(Value::Null)
        }
    }

    fn event(
        &self,
        kind: &str,
        csr: &CertificateSigningRequest,
        cn: Option<&str>,
        rv: u64,
    ) -> Option<Bytes> {
        if !self.selectors.matches(csr) || !self.api.visible_with_cn(&self.caller, csr, cn) {
            return None;
        }
        Some(line(&json!({"type": kind, "object": self.object(csr, rv)})))
    }

    /// A change from the feed: filtered with the event's subject CN, and written from the
    /// event's JSON (serialized once by the store) unless a table is wanted.
    fn change(&self, e: &Event) -> Option<Bytes> {
        let csr = e.object.as_ref();
        if !self.selectors.matches(csr)
            || !self
                .api
                .visible_with_cn(&self.caller, csr, e.subject_cn.as_deref())
        {
            return None;
        }
        let kind = event_type(e.kind);
        if self.as_table {
            return Some(line(
                &json!({"type": kind, "object": self.object(csr, e.resource_version)}),
            ));
        }
        let mut s = String::with_capacity(e.json.len() + 40);
        s.push_str("{\"type\":\"");
        s.push_str(kind);
        s.push_str("\",\"object\":");
        s.push_str(&e.json);
        s.push_str("}\n");
        Some(Bytes::from(s))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
        }
        let obj = if self.as_table {
            json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": [], "rows": []})
        } else {
            json!({"kind": "CertificateSigningRequest", "apiVersion": "certificates.k8s.io/v1",
                   "metadata": metadata, "spec": {"request": "", "signerName": ""}})
        };
        line(&json!({"type": "BOOKMARK", "object": obj}))
    }
}

async fn run(
    w: Watcher,
    initial: Vec<Bytes>,
    mut live: broadcast::Receiver<Event>,
    mut last_rv: u64,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    for b in initial {
        if tx.send(b).await.is_err() {
            return;
        }
    }
    // A bookmark at the end of the initial events tells the client where it stands at once.
    if w.bookmarks
        && tx
            .send(w.bookmark(last_rv, w.initial_events_end))
            .await
            .is_err()
    {
        return;
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
    ticker.tick().await;
    loop {
        let out = tokio::select! {
            () = &mut deadline => return,
            () = tx.closed() => return,
            _ = ticker.tick(), if w.bookmarks => Some(w.bookmark(last_rv, false)),
            ev = live.recv() => match ev {
                Ok(e) if e.resource_version <= last_rv => None,
                Ok(e) => {
                    last_rv = e.resource_version;
                    w.change(&e)
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(expired_event()).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if let Some(b) = out
            && tx.send(b).await.is_err()
        {
            return;
        }
    }
}

impl Api {
    pub(in crate::api) async fn watch<B>(
        &self,
        caller: &Caller,
        q: &Query,
        req: &Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        self.authorize(caller, Verb::Watch, None)?;
        let selectors = Selectors::from_query(q)?;
        let bookmarks = q.bool("allowWatchBookmarks")?;
        let max = self.inner.limits.max_watch_timeout;
        let timeout = q
            .u64("timeoutSeconds")?
            .map_or(max, |s| Duration::from_secs(s).min(max));
        let initial_events_end = q.bool("sendInitialEvents")?;
        if initial_events_end {
            // As kube-apiserver validates watch-list requests.
            if q.get("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(crate::api::error::bad_request(
                    "sendInitialEvents requires resourceVersionMatch=NotOlderThan",
                ));
            }
            if !bookmarks {
                return Err(crate::api::error::bad_request(
                    "sendInitialEvents requires allowWatchBookmarks=true",
                ));
            }
        }
        let from = match q.get("resourceVersion") {
            // Watch-list: the current state (never older than the given version) as ADDED.
            _ if initial_events_end => None,
            None | Some("") | Some("0") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| crate::api::error::bad_request("invalid resourceVersion"))?,
            ),
        };
        // Watch streams are JSON only; a client that accepts nothing else gets 406.
        let accept_header = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        if !table::wants_table(accept_header)
            && crate::api::codec::media::ResponseFormat::negotiate(accept_header)
                != Some(crate::api::codec::media::ResponseFormat::Json)
        {
            return Err(ApiError::NotAcceptable);
        }
        let permit = self.admit_watch(caller)?;
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let w = Watcher {
            api: self.clone(),
            caller: caller.clone(),
            selectors,
            as_table: table::wants_table(accept),
            bookmarks,
            initial_events_end,
            _permit: permit,
        };
        let store = self.inner.store.clone();
        let (initial, live, last_rv) = match from {
            Some(rv) => {
                let sub = match blocking(move || store.watch_from(rv)).await? {
                    Ok(sub) => sub,
                    // As kube-apiserver: a watch from a version out of the window opens and
                    // ends with one ERROR event (410 Expired), not an error answer; clients
                    // (client-go's reflector, kube-rs's watcher) then list again.
                    Err(crate::store::StoreError::Expired { .. }) => {
                        let (tx, rx) = mpsc::channel::<Bytes>(1);
                        let _ = tx.try_send(expired_event());
                        return Ok(watch_response(WatchBody(rx)));
                    }
                    Err(e) => return Err(e.into()),
                };
                let initial: Vec<Bytes> = sub.replay.iter().filter_map(|e| w.change(e)).collect();
                let last = sub.replay.last().map_or(rv, |e| e.resource_version);
                (initial, sub.live, last)
            }
            None => {
                let snap = blocking(move || store.watch_now()).await??;
                let initial: Vec<Bytes> = snap
                    .objects
                    .iter()
                    .filter_map(|(o, cn)| w.event("ADDED", o, cn.as_deref(), snap.resource_version))
                    .collect();
                (initial, snap.live, snap.resource_version)
            }
        };
        let (tx, rx) = mpsc::channel::<Bytes>(WATCH_BUFFER);
        tokio::spawn(run(w, initial, live, last_rv, timeout, tx));
        Ok(watch_response(WatchBody(rx)))
    }
}

/// The 200 answer that carries a watch stream.
fn watch_response(body: WatchBody) -> Response<ResponseBody> {
    let mut resp = Response::new(body.boxed());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// The ERROR event that ends a watch whose resourceVersion is out of the window (410 Expired).
fn expired_event() -> Bytes {
    line(&json!({"type": "ERROR", "object": ApiError::Expired.status_json()}))
}

//! The appliance's HTTP API: the `certificates.k8s.io/v1` slice of kube-apiserver that kubectl,
//! kubelets and client libraries use (reference §1, §6). [`Api::handle`] is the router; it is
//! transport-free so tests drive it in process; [`edge::server`] puts it behind TLS + HTTP/1.1 + h2.
//!
//! Request path: authenticate → route → decode (bounded) → parse the request once
//! ([`crate::issue::CsrRequest`]) → authorize → rules → approval and signing (the shared
//! [`crate::core::Core`], blocking thread) → store → response. Every error becomes a
//! Kubernetes `Status` in [`error`].
//!
//! Layout, in the order a request meets it:
//! - [`edge`]: server, connections, peer address, slot admission, the serving certificate;
//! - this file: the router ([`Api::handle`]) and the API's named bounds ([`Limits`]);
//! - [`hooks`] (the authn interface), [`decode`], [`body`], [`error`]: bounded request
//!   decoding, response bodies, errors → `Status`;
//! - [`csr`]: the CSR resource (create, get, update, patch, delete, list, watch, table, rules,
//!   signing of stored CSRs);
//! - [`codec`]: media types, protobuf bodies, PATCH bodies;
//! - [`discovery`], [`openapi`]: discovery and OpenAPI documents;
//! - [`limits`], [`gc`]: create limits and CSR garbage collection;
//! - [`external_signing`]: the apiserver emulation for external-signing mode (Leases, `/status`
//!   writes by a controller); a reader of the standalone appliance can skip it.
//!
//! PATCH (merge/strategic/JSON patch) decodes to a full object and then takes the PUT path's
//! rules (`csr::rules::apply_*`), so no new rule code.

pub mod body;
pub mod codec;
pub mod csr;
pub mod discovery;
pub mod edge;
pub mod error;
pub mod external_signing;
pub mod gc;
pub mod hooks;
pub mod limits;
pub mod openapi;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use rustls_pki_types::CertificateDer;
use tokio::sync::Notify;

use crate::authz::AuthzConfig;
use crate::core::Core;
use crate::store::Store;
use body::{RequestBody, ResponseBody, full};
use codec::request::Query;
use edge::admission;
use error::ApiError;
use hooks::{Authenticate, AuthnResult, Caller, Verb};

/// Default request-body limit: 1 MiB. The apiserver allows ≈ 3 MiB (reference §6.5); a CSR
/// object is a few KiB, so a third of that is ample and keeps a flood cheap.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default cap on concurrent watches (each holds a task and a broadcast receiver). A 10,000-node
/// storm watches one CSR per bootstrapping node for seconds; 1024 covers a wide burst.
pub const DEFAULT_MAX_WATCHES: usize = 1024;
/// Time allowed for a request body (a CSR is a few KiB; kube-apiserver's non-long-running
/// request timeout is 60 s, and a body slower than half of it is a slow-loris client).
/// Longest watch: kube-apiserver's `--min-request-timeout` default (1800 s); longer requested
/// timeouts are cut to this.
pub const DEFAULT_MAX_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);
/// Default requests in flight: kube-apiserver's `--max-requests-inflight` default.
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = 400;
/// Largest `limit` on a list (kubectl sends 500); larger values are cut to this.
pub const MAX_LIST_LIMIT: usize = 1000;
/// How often the signer backlog is re-scanned when nothing wakes it.
pub const BACKLOG_INTERVAL: Duration = Duration::from_secs(5);

/// Named bounds on untrusted input, from `[server]` and `[limits]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request-body limit in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Concurrent watches (429 beyond).
    pub max_watches: usize,
    /// Longest watch.
    pub max_watch_timeout: Duration,
    /// Per-node and per-requester create limits (`[limits]`).
    pub create: crate::config::LimitsConfig,
    /// Time allowed for a request body to arrive.
    pub body_read_timeout: Duration,
    /// Requests handled at once (health probes excepted); 429 beyond.
    pub max_requests_in_flight: usize,
    /// Most requests in flight for one identity (default: half of the pool).
    pub max_requests_per_identity: Option<usize>,
    /// Request slots only administrators may take (default: a tenth of the pool).
    pub admin_reserved_requests: Option<usize>,
    /// Most watches for one identity (default: half of `max_watches`).
    pub max_watches_per_identity: Option<usize>,
    /// Watch slots only administrators may take (default: a tenth of `max_watches`).
    pub admin_reserved_watches: Option<usize>,
}

impl Limits {
    /// The request pool's shares.
    pub fn request_shares(&self) -> admission::Shares {
        admission::Shares::new(
            self.max_requests_in_flight,
            self.max_requests_per_identity,
            self.admin_reserved_requests,
        )
    }

    /// The watch pool's shares.
    pub fn watch_shares(&self) -> admission::Shares {
        admission::Shares::new(
            self.max_watches,
            self.max_watches_per_identity,
            self.admin_reserved_watches,
        )
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_watches: DEFAULT_MAX_WATCHES,
            max_watch_timeout: DEFAULT_MAX_WATCH_TIMEOUT,
            create: crate::config::LimitsConfig::default(),
            body_read_timeout: crate::config::server::DEFAULT_BODY_READ_TIMEOUT,
            max_requests_in_flight: DEFAULT_MAX_REQUESTS_IN_FLIGHT,
            max_requests_per_identity: None,
            admin_reserved_requests: None,
            max_watches_per_identity: None,
            admin_reserved_watches: None,
        }
    }
}

struct Inner {
    store: Store,
    authn: Arc<dyn Authenticate>,
    authz: AuthzConfig,
    core: Arc<Core>,
    limits: Limits,
    watches: admission::Pool,
    requests: admission::Pool,
    wake_signer: Notify,
    signing: Mutex<HashSet<String>>,
    limiter: Option<Mutex<crate::api::limits::Limiter>>,
    /// `[server] external_signing`: never approve or sign; clients write `/status`.
    external: bool,
}

/// The API router and its state; cheap to clone.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// A JSON response.
pub(crate) fn json_response(
    code: StatusCode,
    value: &serde_json::Value,
    warnings: &[String],
) -> Response<ResponseBody> {
    json_bytes_response(code, Bytes::from(value.to_string()), warnings)
}

/// A JSON response from already serialized bytes.
pub(crate) fn json_bytes_response(
    code: StatusCode,
    body: Bytes,
    warnings: &[String],
) -> Response<ResponseBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        // RFC 7234 warning: code 299, agent "-", quoted text (quotes and controls dropped).
        let text: String = w
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        if let Ok(v) = header::HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn text_response(code: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(full(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Runs blocking work (store, signer) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    // The request's audit context (who, request id) goes with the work to the blocking thread.
    let ctx = crate::audit::context::capture();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| crate::audit::context::enter(ctx, f)))
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))
}

/// The request-id header, accepted from clients when sane and always answered.
const REQUEST_ID: &str = "x-request-id";

const CSR_PREFIX: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

impl Api {
    /// Builds the API over a store, the authn/authz parts and the issuance core.
    pub fn new(
        store: Store,
        authn: Arc<dyn Authenticate>,
        authz: AuthzConfig,
        core: Arc<Core>,
        limits: Limits,
    ) -> Api {
        Self::with_mode(store, authn, authz, core, limits, false)
    }

    /// [`Api::new`], in external-signing mode when `external` (`[server] external_signing`):
    /// CSRs are never approved or signed here; clients write `/approval` and `/status`.
    pub fn with_mode(
        store: Store,
        authn: Arc<dyn Authenticate>,
        authz: AuthzConfig,
        core: Arc<Core>,
        limits: Limits,
        external: bool,
    ) -> Api {
        Api {
            inner: Arc::new(Inner {
                store,
                authn,
                authz,
                core,
                watches: admission::Pool::new("watches", limits.watch_shares()),
                requests: admission::Pool::new("requests", limits.request_shares()),
                limiter: limits
                    .create
                    .enabled
                    .then(|| Mutex::new(crate::api::limits::Limiter::new(limits.create.clone()))),
                limits,
                wake_signer: Notify::new(),
                signing: Mutex::new(HashSet::new()),
                external,
            }),
        }
    }

    /// The store behind the API.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Handles one request from a (TLS-verified) client chain.
    pub async fn handle<B: RequestBody>(
        &self,
        req: Request<B>,
        client_chain: Option<&[CertificateDer<'static>]>,
    ) -> Response<ResponseBody> {
        let auth = self.inner.authn.authenticate(
            client_chain,
            req.headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
        );
        self.handle_as(req, auth).await
    }

    /// Handles one request for an already-authenticated caller (tests, and `handle`).
    pub async fn handle_as<B: RequestBody>(
        &self,
        req: Request<B>,
        auth: AuthnResult,
    ) -> Response<ResponseBody> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let request_id =
            crate::audit::context::request_id(req.headers().get(REQUEST_ID).map(|v| v.as_bytes()));
        let (user, groups) = match &auth {
            AuthnResult::Authenticated(c) => (c.user.clone(), c.groups.clone()),
            _ => (String::new(), Vec::new()),
        };
        let ctx = crate::audit::context::AuditContext {
            request_id: request_id.clone(),
            user,
            groups,
        };
        let span = tracing::info_span!("request", request_id = %request_id);
        let mut resp = match self.admit(&path, &auth) {
            Ok(_slot) => {
                let routed = crate::audit::context::scope(ctx, self.route(req, auth));
                match tracing::Instrument::instrument(routed, span.clone()).await {
                    Ok(r) => r,
                    Err(e) => e.into_response(),
                }
            }
            Err(e) => e.into_response(),
        };
        if let Ok(v) = header::HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        let _entered = span.enter();
        tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
        let code = resp.status().as_u16();
        let m = crate::metrics::global();
        m.requests
            .get_or_create(&crate::metrics::CodeLabels { code })
            .inc();
        let kind = match resp.status() {
            StatusCode::UNAUTHORIZED => Some("unauthenticated"),
            StatusCode::FORBIDDEN => Some("forbidden"),
            _ => None,
        };
        if let Some(kind) = kind {
            m.auth_failures
                .get_or_create(&crate::metrics::KindLabels { kind })
                .inc();
        }
        resp
    }

    async fn route<B: RequestBody>(
        &self,
        req: Request<B>,
        auth: AuthnResult,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let path = req.uri().path().trim_end_matches('/').to_owned();
        let method = req.method().clone();
        match path.as_str() {
            "/healthz" | "/livez" => return Ok(text_response(StatusCode::OK, "ok")),
            "/readyz" => return Ok(self.readyz().await),
            "/metrics" => return Ok(self.metrics().await),
            _ => {}
        }
        let caller = match auth {
            AuthnResult::Authenticated(c) => c,
            AuthnResult::Anonymous => return Err(ApiError::Unauthorized),
            AuthnResult::Rejected(why) => {
                tracing::info!(reason = %why, "authentication rejected");
                return Err(ApiError::Unauthorized);
            }
        };
        if let Some(doc) = discovery_doc(&path, self.inner.external) {
            if method != Method::GET {
                return Err(ApiError::MethodNotAllowed { allow: "GET" });
            }
            self.authorize(&caller, Verb::Discovery, None)?;
            return Ok(json_response(StatusCode::OK, &doc, &[]));
        }
        // Leases exist only for the controller's leader election in external-signing mode.
        if self.inner.external
            && let Some(rest) = path.strip_prefix(external_signing::lease::PREFIX)
        {
            return self.route_lease(&caller, rest, req).await;
        }
        // Exact routing: the collection itself or a path below it, never a longer name.
        let Some(segments) = csr_segments(&path) else {
            return Err(ApiError::NoRoute { path });
        };
        let q = Query::parse(req.uri().query());
        // Authorize the verb before any body byte is read (the object-level check follows once
        // the body is decoded): a caller who may not write never holds a slot for a slow body.
        if let Some((verb, name)) = body_verb(&segments, &method) {
            crate::authz::may_attempt(&caller, verb, name, &self.inner.authz)
                .map_err(|f| ApiError::Forbidden { message: f.message })?;
        }
        match (segments.as_slice(), &method) {
            ([], &Method::GET) if q.bool("watch")? => self.watch(&caller, &q, &req).await,
            ([], &Method::GET) => self.list(&caller, &q, &req).await,
            ([], &Method::POST) => self.create(&caller, &q, req).await,
            ([name], &Method::GET) | ([name, "approval" | "status"], &Method::GET) => {
                self.get(&caller, name, &req).await
            }
            ([name], &Method::DELETE) => self.delete(&caller, name).await,
            ([name], &Method::PUT) => {
                self.update(&caller, name, csr::UpdatePath::Main, &q, req)
                    .await
            }
            ([name, "approval"], &Method::PUT) => {
                self.update(&caller, name, csr::UpdatePath::Approval, &q, req)
                    .await
            }
            ([name, "status"], &Method::PUT) => {
                self.update(&caller, name, csr::UpdatePath::Status, &q, req)
                    .await
            }
            ([name], &Method::PATCH) => {
                self.patch(&caller, name, csr::UpdatePath::Main, &q, req)
                    .await
            }
            ([name, "approval"], &Method::PATCH) => {
                self.patch(&caller, name, csr::UpdatePath::Approval, &q, req)
                    .await
            }
            ([name, "status"], &Method::PATCH) => {
                self.patch(&caller, name, csr::UpdatePath::Status, &q, req)
                    .await
            }
            ([], _) => Err(ApiError::MethodNotAllowed { allow: "GET, POST" }),
            ([_], _) => Err(ApiError::MethodNotAllowed {
                allow: "GET, PUT, PATCH, DELETE",
            }),
            ([_, "approval" | "status"], _) => Err(ApiError::MethodNotAllowed {
                allow: "GET, PUT, PATCH",
            }),
            _ => Err(ApiError::NoRoute { path: path.clone() }),
        }
    }

    /// The caller's class for the slot pools.
    fn class(&self, auth: &AuthnResult) -> (admission::Class, String) {
        match auth {
            AuthnResult::Authenticated(c) if crate::authz::is_admin(c, &self.inner.authz) => {
                (admission::Class::Admin, c.user.clone())
            }
            AuthnResult::Authenticated(c) => (admission::Class::User, c.user.clone()),
            _ => (admission::Class::Anonymous, String::new()),
        }
    }

    /// A request slot (`[server] max_requests_in_flight`, shared fairly by identity), or 429.
    /// Health probes always get in (`None`), so an overloaded appliance still answers its
    /// orchestrator.
    fn admit(&self, path: &str, auth: &AuthnResult) -> Result<Option<admission::Slot>, ApiError> {
        if matches!(
            path.trim_end_matches('/'),
            "/healthz" | "/livez" | "/readyz"
        ) {
            return Ok(None);
        }
        let (class, identity) = self.class(auth);
        self.inner
            .requests
            .try_acquire(class, &identity)
            .map(Some)
            .map_err(|why| {
                tracing::debug!(?why, ?class, "request slot refused");
                ApiError::TooManyRequests
            })
    }

    /// A watch slot (`[server] max_watches`, shared fairly by identity), or 429.
    pub(crate) fn admit_watch(&self, caller: &Caller) -> Result<admission::Slot, ApiError> {
        let class = if crate::authz::is_admin(caller, &self.inner.authz) {
            admission::Class::Admin
        } else {
            admission::Class::User
        };
        self.inner
            .watches
            .try_acquire(class, &caller.user)
            .map_err(|_| ApiError::TooManyRequests)
    }

    /// `/metrics`, anonymous (counts and times only; see `crate::metrics`). Gauges that
    /// describe the present (HSM up, pending CSRs) are read at scrape time.
    async fn metrics(&self) -> Response<ResponseBody> {
        let m = crate::metrics::global();
        m.hsm_up.set(i64::from(self.inner.core.ready()));
        let store = self.inner.store.clone();
        let counted = blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.count_phase("pending")?,
                store.count_phase("approved")?,
            ))
        })
        .await;
        if let Ok(Ok((pending, approved))) = counted {
            m.pending_csrs
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            m.approved_unsigned
                .set(i64::try_from(approved).unwrap_or(i64::MAX));
        }
        let mut resp = Response::new(full(m.render()));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        resp
    }

    async fn readyz(&self) -> Response<ResponseBody> {
        let store = self.inner.store.clone();
        let store_ok = matches!(blocking(move || store.resource_version()).await, Ok(Ok(_)));
        if store_ok && self.inner.core.ready() {
            text_response(StatusCode::OK, "ok")
        } else {
            text_response(StatusCode::SERVICE_UNAVAILABLE, "not ok")
        }
    }

    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        verb: Verb,
        facts: Option<&hooks::CsrFacts<'_>>,
    ) -> Result<(), ApiError> {
        self.authorize_named(caller, verb, facts, None)
    }

    /// [`Api::authorize`] for a request naming one CSR (RBAC resourceNames can match it).
    pub(crate) fn authorize_named(
        &self,
        caller: &Caller,
        verb: Verb,
        facts: Option<&hooks::CsrFacts<'_>>,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        crate::authz::authorize_named(caller, verb, facts, name, &self.inner.authz)
            .map_err(|f| ApiError::Forbidden { message: f.message })
    }
}

/// The OpenAPI documents are generated once per process.
static OPENAPI_V2: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
static OPENAPI_V3: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
static LEASE_OPENAPI_V3: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();

fn cached(
    cell: &std::sync::OnceLock<serde_json::Value>,
    make: fn() -> serde_json::Value,
) -> serde_json::Value {
    cell.get_or_init(make).clone()
}

/// The verb (and CSR name) of a request that carries a body, for the check made before it is
/// read.
fn body_verb<'a>(segments: &[&'a str], method: &Method) -> Option<(Verb, Option<&'a str>)> {
    let verb = match (segments, method) {
        ([], &Method::POST) => return Some((Verb::Create, None)),
        ([_], &Method::PUT) => Verb::Update,
        ([_, "approval"], &Method::PUT) => Verb::UpdateApproval,
        ([_, "status"], &Method::PUT) => Verb::UpdateStatus,
        ([_], &Method::PATCH) => Verb::Patch,
        ([_, "approval"], &Method::PATCH) => Verb::PatchApproval,
        ([_, "status"], &Method::PATCH) => Verb::PatchStatus,
        _ => return None,
    };
    Some((verb, segments.first().copied()))
}

/// The path segments below the CSR collection (`[]` for the collection itself), or `None` when
/// the path is not the collection or below it (`…/certificatesigningrequestsXYZ`) or has an
/// empty segment.
fn csr_segments(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix(CSR_PREFIX)?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    let segments: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    (!segments.contains(&"")).then_some(segments)
}

/// The discovery and OpenAPI documents by path. `external`: the Lease group is served
/// (external-signing mode only). `/api` lists no version: no core/v1 resource is served, and
/// an empty `/api/v1` makes kubectl's discovery fail ("received empty response for: v1").
fn discovery_doc(path: &str, external: bool) -> Option<serde_json::Value> {
    Some(match path {
        "/version" => discovery::version(),
        "/api" => discovery::api_versions(),
        "/apis" => discovery::group_list(external),
        "/apis/certificates.k8s.io" => discovery::api_group(),
        "/apis/certificates.k8s.io/v1" => discovery::resource_list(),
        "/openapi/v2" => cached(&OPENAPI_V2, openapi::v2),
        "/openapi/v3" => openapi::v3_root(external),
        "/openapi/v3/apis/certificates.k8s.io/v1" => cached(&OPENAPI_V3, openapi::v3_group_version),
        "/apis/coordination.k8s.io" if external => external_signing::lease::api_group(),
        "/apis/coordination.k8s.io/v1" if external => external_signing::lease::resource_list(),
        "/openapi/v3/apis/coordination.k8s.io/v1" if external => cached(
            &LEASE_OPENAPI_V3,
            external_signing::lease_openapi::v3_group_version,
        ),
        _ => return None,
    })
}

//! `coordination.k8s.io/v1` Leases (namespaced), for leader election of `kubesigner controller`
//! replicas (issue 10): discovery, get, list, create, update (PUT, resourceVersion-conditional:
//! a stale one is 409 Conflict), patch (merge, strategic merge as merge, JSON patch; applied to
//! the stored object with its resourceVersion as precondition), delete. No watch.
//!
//! Served in every mode (harmless: only administrators, and in external-signing mode what the
//! RBAC manifests grant, may touch them). `spec.acquireTime` / `renewTime` are `MicroTime`
//! (RFC 3339, six fractional digits) and round-trip as sent.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Value, json};

use super::body::{ResponseBody, read_limited};
use super::decode::Query;
use super::error::{ApiError, bad_request};
use super::hooks::Caller;
use super::{Api, blocking, json_response};
use crate::authz::rbac;
use crate::store::leases::LeaseError;

/// Path prefix of the group-version.
pub const PREFIX: &str = "/apis/coordination.k8s.io/v1";
/// The API group.
pub const GROUP: &str = "coordination.k8s.io";
const GROUP_VERSION: &str = "coordination.k8s.io/v1";
const RESOURCE: &str = "leases";
/// Largest lease body: a Lease is a few hundred bytes; 64 KiB leaves room for labels and
/// annotations (the `[server] max_body_bytes` limit applies when smaller).
pub const MAX_LEASE_BODY: usize = 64 * 1024;
/// Longest name (DNS-1123 subdomain) and namespace (DNS-1123 label), as kube-apiserver.
const MAX_NAME: usize = 253;
const MAX_NAMESPACE: usize = 63;
/// Longest `spec.holderIdentity` kept (upstream does not bound it; identities are host names
/// plus a suffix).
const MAX_HOLDER: usize = 1024;

fn group() -> Value {
    json!({"name": GROUP,
           "versions": [{"groupVersion": GROUP_VERSION, "version": "v1"}],
           "preferredVersion": {"groupVersion": GROUP_VERSION, "version": "v1"}})
}

/// The group's entry in `GET /apis`.
pub fn group_entry() -> Value {
    group()
}

/// `GET /apis/coordination.k8s.io`.
pub fn api_group() -> Value {
    let mut g = group();
    if let Some(o) = g.as_object_mut() {
        o.insert("kind".to_owned(), json!("APIGroup"));
        o.insert("apiVersion".to_owned(), json!("v1"));
    }
    g
}

/// `GET /apis/coordination.k8s.io/v1`.
pub fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [{
            "name": RESOURCE, "singularName": "lease", "namespaced": true, "kind": "Lease",
            "verbs": ["create", "delete", "get", "list", "patch", "update"],
            "storageVersionHash": ""
        }]
    })
}

fn status(code: StatusCode, reason: &'static str, message: String, name: &str) -> ApiError {
    ApiError::ObjectStatus {
        code,
        reason,
        message,
        details: Some(json!({"name": name, "group": GROUP, "kind": RESOURCE})),
    }
}

fn lease_invalid(name: &str, field: &str, message: &str) -> ApiError {
    ApiError::ObjectStatus {
        code: StatusCode::UNPROCESSABLE_ENTITY,
        reason: "Invalid",
        message: format!("Lease.{GROUP} {name:?} is invalid: {field}: {message}"),
        details: Some(json!({"name": name, "group": GROUP, "kind": "Lease",
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]})),
    }
}

impl From<LeaseError> for ApiError {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::Store(e) => e.into(),
            LeaseError::NotFound { name, .. } => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{RESOURCE}.{GROUP} {name:?} not found"),
                &name,
            ),
            LeaseError::AlreadyExists { name, .. } => status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{RESOURCE}.{GROUP} {name:?} already exists"),
                &name,
            ),
            LeaseError::Conflict { name, .. } => status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {RESOURCE}.{GROUP} {name:?}: the object has been modified; please apply your changes to the latest version and try again"
                ),
                &name,
            ),
            LeaseError::TooMany { max } => ApiError::Forbidden {
                message: format!("exceeded quota: at most {max} leases may be stored"),
            },
        }
    }
}

/// A DNS-1123 subdomain (`max` 253) or label (`max` 63, no dots).
fn dns_name(s: &str, max: usize, dots: bool) -> bool {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(ok_char)
        && alnum(s.chars().next())
        && alnum(s.chars().last())
}

/// Kubernetes' lease validation (`ValidateLeaseSpec`) plus bounds.
fn validate(lease: &Lease, name: &str) -> Result<(), ApiError> {
    if !dns_name(name, MAX_NAME, true) {
        return Err(lease_invalid(
            name,
            "metadata.name",
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ));
    }
    let Some(spec) = &lease.spec else {
        return Ok(());
    };
    if spec.lease_duration_seconds.is_some_and(|d| d <= 0) {
        return Err(lease_invalid(
            name,
            "spec.leaseDurationSeconds",
            "must be greater than 0",
        ));
    }
    if spec.lease_transitions.is_some_and(|t| t < 0) {
        return Err(lease_invalid(
            name,
            "spec.leaseTransitions",
            "must be greater than or equal to 0",
        ));
    }
    if spec
        .holder_identity
        .as_ref()
        .is_some_and(|h| h.len() > MAX_HOLDER)
    {
        return Err(lease_invalid(
            name,
            "spec.holderIdentity",
            "must be no more than 1024 bytes",
        ));
    }
    Ok(())
}

fn lease_response(code: StatusCode, lease: &Lease) -> Result<Response<ResponseBody>, ApiError> {
    let v = serde_json::to_value(lease).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
    Ok(json_response(code, &v, &[]))
}

fn parse_rv(rv: Option<&str>, name: &str) -> Result<Option<u64>, ApiError> {
    match rv {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            lease_invalid(
                name,
                "metadata.resourceVersion",
                "must be a resourceVersion from this server",
            )
        }),
    }
}

/// Which lease request.
enum Target<'a> {
    /// `/leases` across namespaces.
    All,
    /// `/namespaces/{ns}/leases`.
    Collection(&'a str),
    /// `/namespaces/{ns}/leases/{name}`.
    One(&'a str, &'a str),
}

fn target(rest: &str) -> Option<Target<'_>> {
    let segments: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        [RESOURCE] => Some(Target::All),
        ["namespaces", ns, RESOURCE] => Some(Target::Collection(ns)),
        ["namespaces", ns, RESOURCE, name] => Some(Target::One(ns, name)),
        _ => None,
    }
}

fn accept_of<B>(req: &Request<B>) -> Option<String> {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Api {
    fn authorize_lease(
        &self,
        caller: &Caller,
        verb: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        let req = rbac::Request {
            verb,
            api_group: GROUP,
            resource: RESOURCE,
            subresource: None,
            name,
            namespace,
        };
        crate::authz::authorize_resource(caller, &req, &self.inner.authz).map_err(|f| {
            tracing::info!(user = %caller.user, verb, ?namespace, ?name, "lease request forbidden");
            ApiError::Forbidden { message: f.message }
        })
    }

    /// Routes a request under [`PREFIX`] (`rest` is the path after it).
    pub(super) async fn route_lease<B>(
        &self,
        caller: &Caller,
        rest: &str,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let Some(t) = target(rest) else {
            return Err(ApiError::NoRoute {
                path: format!("{PREFIX}{rest}"),
            });
        };
        let q = Query::parse(req.uri().query());
        if q.get("dryRun").is_some() {
            return Err(bad_request("dryRun is not supported"));
        }
        if q.bool("watch")? {
            return Err(bad_request("watching leases is not supported"));
        }
        let method = req.method().clone();
        match (t, &method) {
            (Target::All, &Method::GET) => self.lease_list(caller, None, &req).await,
            (Target::Collection(ns), &Method::GET) => self.lease_list(caller, Some(ns), &req).await,
            (Target::Collection(ns), &Method::POST) => self.lease_create(caller, ns, req).await,
            (Target::One(ns, name), &Method::GET) => {
                self.authorize_lease(caller, "get", Some(ns), Some(name))?;
                let lease = self.read_lease(ns, name).await?;
                lease_response(StatusCode::OK, &lease)
            }
            (Target::One(ns, name), &Method::PUT) => self.lease_put(caller, ns, name, req).await,
            (Target::One(ns, name), &Method::PATCH) => {
                self.lease_patch(caller, ns, name, req).await
            }
            (Target::One(ns, name), &Method::DELETE) => {
                self.authorize_lease(caller, "delete", Some(ns), Some(name))?;
                let store = self.inner.store.clone();
                let (n, m) = (ns.to_owned(), name.to_owned());
                let gone = blocking(move || store.lease_delete(&n, &m)).await??;
                let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": GROUP, "kind": RESOURCE, "uid": gone.metadata.uid}});
                Ok(json_response(StatusCode::OK, &body, &[]))
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }

    async fn read_lease(&self, ns: &str, name: &str) -> Result<Lease, ApiError> {
        let store = self.inner.store.clone();
        let (n, m) = (ns.to_owned(), name.to_owned());
        blocking(move || store.lease_get(&n, &m))
            .await??
            .ok_or_else(|| {
                LeaseError::NotFound {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                }
                .into()
            })
    }

    async fn lease_list<B>(
        &self,
        caller: &Caller,
        ns: Option<&str>,
        req: &Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        self.authorize_lease(caller, "list", ns, None)?;
        if let Some(ns) = ns
            && !dns_name(ns, MAX_NAMESPACE, false)
        {
            return Err(bad_request("invalid namespace"));
        }
        let store = self.inner.store.clone();
        let n = ns.map(str::to_owned);
        let (items, rv) = blocking(move || store.lease_list(n.as_deref())).await??;
        if super::table::wants_table(accept_of(req).as_deref()) {
            return Ok(json_response(StatusCode::OK, &table(&items, rv), &[]));
        }
        let items =
            serde_json::to_value(&items).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
        let list = json!({"kind": "LeaseList", "apiVersion": GROUP_VERSION,
            "metadata": {"resourceVersion": rv.to_string()}, "items": items});
        Ok(json_response(StatusCode::OK, &list, &[]))
    }

    async fn lease_body<B>(&self, req: Request<B>) -> Result<Bytes, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let limit = self.inner.limits.max_body_bytes.min(MAX_LEASE_BODY);
        read_limited(req.into_body(), limit, self.inner.limits.body_read_timeout).await
    }

    async fn decode_lease<B>(&self, req: Request<B>) -> Result<Lease, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let json_body = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.split(';').next())
            .is_none_or(|m| m.trim().is_empty() || m.trim() == "application/json");
        if !json_body {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = self.lease_body(req).await?;
        serde_json::from_slice(&bytes).map_err(|e| bad_request(format!("invalid Lease: {e}")))
    }

    async fn lease_create<B>(
        &self,
        caller: &Caller,
        ns: &str,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        self.authorize_lease(caller, "create", Some(ns), None)?;
        if !dns_name(ns, MAX_NAMESPACE, false) {
            return Err(bad_request("invalid namespace"));
        }
        let mut lease = self.decode_lease(req).await?;
        let name = lease.metadata.name.clone().unwrap_or_default();
        validate(&lease, &name)?;
        if lease.metadata.namespace.as_deref().is_some_and(|n| n != ns) {
            return Err(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        lease.metadata.namespace = Some(ns.to_owned());
        lease.metadata.uid = Some(super::csr::new_uid()?);
        lease.metadata.creation_timestamp = Some(super::csr::now());
        lease.metadata.resource_version = None;
        lease.metadata.managed_fields = None;
        let store = self.inner.store.clone();
        let created = blocking(move || store.lease_create(lease)).await??;
        tracing::info!(namespace = %ns, lease = %name, by = %caller.user, "lease created");
        lease_response(StatusCode::CREATED, &created)
    }

    /// The common tail of PUT and PATCH.
    async fn lease_replace(
        &self,
        ns: &str,
        name: &str,
        expected_rv: Option<u64>,
        mut lease: Lease,
    ) -> Result<Response<ResponseBody>, ApiError> {
        if lease.metadata.name.as_deref().is_some_and(|n| n != name) {
            return Err(bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        if lease.metadata.namespace.as_deref().is_some_and(|n| n != ns) {
            return Err(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        validate(&lease, name)?;
        lease.metadata.name = Some(name.to_owned());
        lease.metadata.namespace = Some(ns.to_owned());
        lease.metadata.managed_fields = None;
        let store = self.inner.store.clone();
        let updated = blocking(move || store.lease_replace(expected_rv, lease)).await??;
        lease_response(StatusCode::OK, &updated)
    }

    async fn lease_put<B>(
        &self,
        caller: &Caller,
        ns: &str,
        name: &str,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        self.authorize_lease(caller, "update", Some(ns), Some(name))?;
        let lease = self.decode_lease(req).await?;
        let expected = parse_rv(lease.metadata.resource_version.as_deref(), name)?;
        self.lease_replace(ns, name, expected, lease).await
    }

    async fn lease_patch<B>(
        &self,
        caller: &Caller,
        ns: &str,
        name: &str,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        use crate::compat::patch::{PatchError, PatchKind, apply};
        self.authorize_lease(caller, "patch", Some(ns), Some(name))?;
        let kind = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(PatchKind::from_content_type)
            .ok_or(ApiError::UnsupportedMediaType)?;
        let bytes = self.lease_body(req).await?;
        let stored = self.read_lease(ns, name).await?;
        let doc = serde_json::to_value(&stored)
            .map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
        let patched = apply(&doc, kind, &bytes).map_err(|e| match e {
            PatchError::TooLarge { max, .. } => ApiError::TooLarge { limit: max },
            e @ (PatchError::OperationFailed { .. } | PatchError::ResultTooLarge) => {
                lease_invalid(name, "patch", &e.to_string())
            }
            e => bad_request(e.to_string()),
        })?;
        let lease: Lease = serde_json::from_value(patched)
            .map_err(|e| bad_request(format!("invalid Lease after patch: {e}")))?;
        // A patch that sets metadata.resourceVersion makes it the precondition; otherwise the
        // version it was applied to (a concurrent write in between is a 409).
        let expected = parse_rv(lease.metadata.resource_version.as_deref(), name)?
            .or(parse_rv(stored.metadata.resource_version.as_deref(), name)?);
        self.lease_replace(ns, name, expected, lease).await
    }
}

/// A `meta.k8s.io/v1` Table of leases (kubectl's columns: Name, Holder, Age).
fn table(items: &[Lease], rv: u64) -> Value {
    let now = super::csr::now_unix();
    let col = |name: &str, format: &str, d: &str| json!({"name": name, "type": "string", "format": format, "description": d, "priority": 0});
    let rows: Vec<Value> = items
        .iter()
        .map(|l| {
            let age = l
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| super::table::human_duration(now - t.0.as_second()))
                .unwrap_or_else(|| "<unknown>".to_owned());
            let holder = l
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default();
            let meta = serde_json::to_value(&l.metadata).unwrap_or(Value::Null);
            json!({"cells": [l.metadata.name.clone().unwrap_or_default(), holder, age],
                   "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": [
            col("Name", "name", "Name must be unique within a namespace."),
            col("Holder", "", "holderIdentity contains the identity of the holder of a current lease."),
            col("Age", "", "CreationTimestamp is a timestamp representing the server time when this object was created."),
        ],
        "rows": rows,
    })
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;

//! `coordination.k8s.io/v1` Leases (namespaced), for leader election of `kubesigner controller`
//! replicas: discovery, get, list, create, update (PUT, resourceVersion-conditional:
//! a stale one is 409 Conflict), patch (merge, strategic merge as merge, JSON patch; applied to
//! the stored object with its resourceVersion as precondition), delete (with
//! `preconditions.resourceVersion` honoured). No watch.
//!
//! Served in every mode (harmless: only administrators, and in external-signing mode what the
//! RBAC manifests grant, may touch them). `spec.acquireTime` / `renewTime` are `MicroTime`
//! (RFC 3339, six fractional digits) and round-trip as sent.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;

use super::lease_rules::{MAX_NAMESPACE, dns_name, table, validate};
use crate::api::body::{RequestBody, ResponseBody, read_limited};
use crate::api::codec::request::{FieldValidation, Query};
use crate::api::error::{ApiError, bad_request};
use crate::api::hooks::Caller;
use crate::api::{Api, blocking, json_response};
use crate::authz::rbac;

pub use super::lease_rules::{api_group, group_entry, resource_list};
use crate::store::leases::LeaseError;

/// Path prefix of the group-version.
pub const PREFIX: &str = "/apis/coordination.k8s.io/v1";
/// The API group.
pub const GROUP: &str = "coordination.k8s.io";
const GROUP_VERSION: &str = "coordination.k8s.io/v1";
pub(super) const RESOURCE: &str = "leases";
/// Largest lease body: a Lease is a few hundred bytes; 64 KiB leaves room for labels and
/// annotations (the `[server] max_body_bytes` limit applies when smaller).
pub const MAX_LEASE_BODY: usize = 64 * 1024;

fn status(code: StatusCode, reason: &'static str, message: String, name: &str) -> ApiError {
    ApiError::ObjectStatus {
        code,
        reason,
        message,
        details: Some(json!({"name": name, "group": GROUP, "kind": RESOURCE})),
    }
}

pub(super) fn lease_invalid(name: &str, field: &str, message: &str) -> ApiError {
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

fn lease_response(
    code: StatusCode,
    lease: &Lease,
    warnings: &[String],
) -> Result<Response<ResponseBody>, ApiError> {
    let v = serde_json::to_value(lease).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
    Ok(json_response(code, &v, warnings))
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

/// The `preconditions.resourceVersion` of a DELETE's `DeleteOptions` body (empty body: none).
fn delete_precondition(body: &[u8], name: &str) -> Result<Option<u64>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let opts: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad_request(format!("DeleteOptions: {e}")))?;
    let rv = opts
        .get("preconditions")
        .and_then(|p| p.get("resourceVersion"))
        .and_then(serde_json::Value::as_str);
    parse_rv(rv, name)
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
    pub(in crate::api) async fn route_lease<B: RequestBody>(
        &self,
        caller: &Caller,
        rest: &str,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
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
            (Target::Collection(ns), &Method::POST) => self.lease_create(caller, ns, &q, req).await,
            (Target::One(ns, name), &Method::GET) => {
                self.authorize_lease(caller, "get", Some(ns), Some(name))?;
                let lease = self.read_lease(ns, name).await?;
                lease_response(StatusCode::OK, &lease, &[])
            }
            (Target::One(ns, name), &Method::PUT) => {
                self.lease_put(caller, ns, name, &q, req).await
            }
            (Target::One(ns, name), &Method::PATCH) => {
                self.lease_patch(caller, ns, name, &q, req).await
            }
            (Target::One(ns, name), &Method::DELETE) => {
                self.authorize_lease(caller, "delete", Some(ns), Some(name))?;
                let expected_rv = delete_precondition(&self.lease_body(req).await?, name)?;
                let store = self.inner.store.clone();
                let (n, m) = (ns.to_owned(), name.to_owned());
                let gone = blocking(move || store.lease_delete(&n, &m, expected_rv)).await??;
                let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": GROUP, "kind": RESOURCE, "uid": gone.metadata.uid}});
                Ok(json_response(StatusCode::OK, &body, &[]))
            }
            (Target::All, _) => Err(ApiError::MethodNotAllowed { allow: "GET" }),
            (Target::Collection(_), _) => Err(ApiError::MethodNotAllowed { allow: "GET, POST" }),
            (Target::One(..), _) => Err(ApiError::MethodNotAllowed {
                allow: "GET, PUT, PATCH, DELETE",
            }),
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
        if crate::api::csr::table::wants_table(accept_of(req).as_deref()) {
            return Ok(json_response(StatusCode::OK, &table(&items, rv), &[]));
        }
        let items =
            serde_json::to_value(&items).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
        let list = json!({"kind": "LeaseList", "apiVersion": GROUP_VERSION,
            "metadata": {"resourceVersion": rv.to_string()}, "items": items});
        Ok(json_response(StatusCode::OK, &list, &[]))
    }

    async fn lease_body<B: RequestBody>(&self, req: Request<B>) -> Result<Bytes, ApiError> {
        let limit = self.inner.limits.max_body_bytes.min(MAX_LEASE_BODY);
        read_limited(req.into_body(), limit, self.inner.limits.body_read_timeout).await
    }

    async fn decode_lease<B: RequestBody>(
        &self,
        q: &Query,
        req: Request<B>,
    ) -> Result<(Lease, Vec<String>), ApiError> {
        let json_body = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.split(';').next())
            .is_none_or(|m| m.trim().is_empty() || m.trim() == "application/json");
        if !json_body {
            return Err(ApiError::UnsupportedMediaType);
        }
        let fv = FieldValidation::from_query(q)?;
        let bytes = self.lease_body(req).await?;
        super::lease_rules::decode(&bytes, fv)
    }

    async fn lease_create<B: RequestBody>(
        &self,
        caller: &Caller,
        ns: &str,
        q: &Query,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        self.authorize_lease(caller, "create", Some(ns), None)?;
        if !dns_name(ns, MAX_NAMESPACE, false) {
            return Err(bad_request("invalid namespace"));
        }
        let (mut lease, warnings) = self.decode_lease(q, req).await?;
        let name = lease.metadata.name.clone().unwrap_or_default();
        validate(&lease, &name)?;
        if lease.metadata.namespace.as_deref().is_some_and(|n| n != ns) {
            return Err(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        lease.metadata.namespace = Some(ns.to_owned());
        lease.metadata.uid = Some(crate::api::csr::new_uid()?);
        lease.metadata.creation_timestamp = Some(crate::api::csr::now());
        lease.metadata.resource_version = None;
        lease.metadata.managed_fields = None;
        let store = self.inner.store.clone();
        let created = blocking(move || store.lease_create(lease)).await??;
        tracing::info!(namespace = %ns, lease = %name, by = %caller.user, "lease created");
        lease_response(StatusCode::CREATED, &created, &warnings)
    }

    /// The common tail of PUT and PATCH.
    async fn lease_replace(
        &self,
        ns: &str,
        name: &str,
        expected_rv: Option<u64>,
        mut lease: Lease,
        warnings: Vec<String>,
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
        lease_response(StatusCode::OK, &updated, &warnings)
    }

    async fn lease_put<B: RequestBody>(
        &self,
        caller: &Caller,
        ns: &str,
        name: &str,
        q: &Query,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        self.authorize_lease(caller, "update", Some(ns), Some(name))?;
        let (lease, warnings) = self.decode_lease(q, req).await?;
        let expected = parse_rv(lease.metadata.resource_version.as_deref(), name)?;
        self.lease_replace(ns, name, expected, lease, warnings)
            .await
    }

    async fn lease_patch<B: RequestBody>(
        &self,
        caller: &Caller,
        ns: &str,
        name: &str,
        q: &Query,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        use crate::api::codec::patch::{PatchError, PatchKind, apply};
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
        let fv = FieldValidation::from_query(q)?;
        let patched =
            serde_json::to_vec(&patched).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
        let (lease, warnings) = super::lease_rules::decode(&patched, fv)?;
        // A patch that sets metadata.resourceVersion makes it the precondition; otherwise the
        // version it was applied to (a concurrent write in between is a 409).
        let expected = parse_rv(lease.metadata.resource_version.as_deref(), name)?
            .or(parse_rv(stored.metadata.resource_version.as_deref(), name)?);
        self.lease_replace(ns, name, expected, lease, warnings)
            .await
    }
}

#[cfg(test)]
mod tests;

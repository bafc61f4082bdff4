//! The `certificatesigningrequests` resource, from a decoded request to the response: create,
//! get, update (main, `/approval`, `/status`), patch and delete here; then
//! - `create_flow`: the create path after decoding (node lock, decide, sign, store);
//! - [`rules`]: what a new CSR must look like and what each update path may change;
//! - `signing`: signing stored, approved CSRs (the backlog);
//! - `list` (selectors, limit/continue, visibility) and `watch` (JSON and protobuf events);
//! - [`table`]: kubectl's Table output.

pub(super) mod create_flow;
pub(super) mod list;
pub mod rules;
pub(super) mod signing;
pub mod table;
pub(super) mod watch;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::json;

use self::rules::{GENERATE_NAME_BASE_MAX, check_name};
use super::body::{RequestBody, ResponseBody, read_limited};
use super::codec::request::{Decoded, FieldValidation, Query, decode_csr};
use super::error::{ApiError, bad_request, invalid};
use super::hooks::{Caller, CsrFacts, Verb};
use super::{Api, blocking, json_response};
use crate::api::codec::media::BodyFormat;
use crate::audit::Kind;
use crate::store::UpdateError;

/// Which PUT path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UpdatePath {
    /// The main resource (metadata only).
    Main,
    /// `/approval`.
    Approval,
    /// `/status`.
    Status,
}

/// The characters upstream's generateName appends (`names.go`).
const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// How many it appends.
const GENERATE_SUFFIX_LEN: usize = 5;

pub(super) fn now() -> Time {
    crate::clock::k8s_now()
}

pub(super) fn now_unix() -> i64 {
    now().0.as_second()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; N];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ApiError::Internal("random source failed".to_owned()))?;
    Ok(b)
}

pub(super) fn new_uid() -> Result<String, ApiError> {
    let [
        a0,
        a1,
        a2,
        a3,
        b0,
        b1,
        c0,
        c1,
        d0,
        d1,
        e0,
        e1,
        e2,
        e3,
        e4,
        e5,
    ] = random_bytes::<16>()?;
    // RFC 4122 version 4 (random), variant 1.
    let (c0, d0) = ((c0 & 0x0f) | 0x40, (d0 & 0x3f) | 0x80);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex::encode([a0, a1, a2, a3]),
        hex::encode([b0, b1]),
        hex::encode([c0, c1]),
        hex::encode([d0, d1]),
        hex::encode([e0, e1, e2, e3, e4, e5])
    ))
}

fn generated_name(base: &str) -> Result<String, ApiError> {
    let base: String = base.chars().take(GENERATE_NAME_BASE_MAX).collect();
    let r = random_bytes::<GENERATE_SUFFIX_LEN>()?;
    let suffix: String = r
        .iter()
        .filter_map(|b| GENERATE_ALPHABET.get(usize::from(*b) % GENERATE_ALPHABET.len()))
        .map(|c| char::from(*c))
        .collect();
    Ok(format!("{base}{suffix}"))
}

pub(super) fn facts_of<'a>(
    csr: &'a CertificateSigningRequest,
    cn: Option<&'a str>,
) -> CsrFacts<'a> {
    CsrFacts {
        requester_username: csr.spec.username.as_deref().unwrap_or(""),
        subject_cn: cn,
        signer_name: &csr.spec.signer_name,
    }
}

/// The request body's format (`codec::media`); none given is read as JSON, an unknown one
/// is `None` (415).
fn body_format(req_ct: Option<&str>) -> Option<BodyFormat> {
    match req_ct {
        Some(ct) if !ct.split(';').next().unwrap_or("").trim().is_empty() => {
            BodyFormat::from_content_type(ct)
        }
        _ => Some(BodyFormat::Json),
    }
}

/// A protobuf CSR body (`codec::protobuf`); its errors are 400s with their client-safe text.
fn decode_protobuf(bytes: &[u8]) -> Result<CertificateSigningRequest, ApiError> {
    crate::api::codec::protobuf::decode_csr(bytes).map_err(|e| bad_request(e.to_string()))
}

pub(super) fn object_response(
    code: StatusCode,
    csr: &CertificateSigningRequest,
    accept: Option<&str>,
    warnings: &[String],
) -> Result<Response<ResponseBody>, ApiError> {
    if table::wants_table(accept) {
        let rv = csr
            .metadata
            .resource_version
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        return Ok(json_response(
            code,
            &table::table(&[csr], rv, None, now_unix()),
            warnings,
        ));
    }
    use crate::api::codec::media::ResponseFormat;
    match ResponseFormat::negotiate(accept).ok_or(ApiError::NotAcceptable)? {
        ResponseFormat::Json => {
            let v = serde_json::to_value(csr)
                .map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
            Ok(json_response(code, &v, warnings))
        }
        // A client that accepts only protobuf (reference §6.6).
        ResponseFormat::Protobuf => {
            let mut resp = Response::new(super::body::full(bytes::Bytes::from(
                crate::api::codec::protobuf::encode_csr(csr),
            )));
            *resp.status_mut() = code;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(crate::api::codec::media::PROTOBUF),
            );
            Ok(resp)
        }
    }
}

/// A stored object's answer: its stored JSON as is when the client takes JSON.
pub(super) fn stored_response(
    code: StatusCode,
    stored: &crate::store::Stored,
    accept: Option<&str>,
    warnings: &[String],
) -> Result<Response<ResponseBody>, ApiError> {
    use crate::api::codec::media::ResponseFormat;
    if !table::wants_table(accept)
        && ResponseFormat::negotiate(accept) == Some(ResponseFormat::Json)
    {
        let body = Bytes::copy_from_slice(stored.json.as_bytes());
        return Ok(super::json_bytes_response(code, body, warnings));
    }
    object_response(code, &stored.object, accept, warnings)
}

fn accept<B>(req: &Request<B>) -> Option<String> {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The new object's name: `metadata.name`, or `generateName` plus a random suffix.
fn resolve_name(body: &CertificateSigningRequest) -> Result<String, ApiError> {
    let name = match (
        body.metadata.name.as_deref(),
        body.metadata.generate_name.as_deref(),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_owned(),
        (_, Some(g)) if !g.is_empty() => {
            check_name(g).map_err(|e| {
                invalid(
                    g,
                    "FieldValueInvalid",
                    "metadata.generateName",
                    e.to_string(),
                )
            })?;
            generated_name(g)?
        }
        _ => {
            return Err(invalid(
                "",
                "FieldValueRequired",
                "metadata.name",
                "name or generateName is required",
            ));
        }
    };
    check_name(&name)
        .map_err(|e| invalid(&name, "FieldValueInvalid", "metadata.name", e.to_string()))?;
    Ok(name)
}

/// The caller's `metadata.resourceVersion` precondition, if any.
fn expected_rv(body: &CertificateSigningRequest, name: &str) -> Result<Option<u64>, ApiError> {
    match body.metadata.resource_version.as_deref() {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse::<u64>().map(Some).map_err(|_| {
            invalid(
                name,
                "FieldValueInvalid",
                "metadata.resourceVersion",
                "must be a resourceVersion from this server",
            )
        }),
    }
}

/// A decoded PUT or PATCH, ready for the endpoint's rules.
struct Update {
    path: UpdatePath,
    body: CertificateSigningRequest,
    stored: CertificateSigningRequest,
    warnings: Vec<String>,
    accept: Option<String>,
}

/// A checked update, ready for its transaction.
struct Change {
    path: UpdatePath,
    body: CertificateSigningRequest,
    expected_rv: Option<u64>,
    kind: Kind,
    written: Option<super::external_signing::status::WrittenCert>,
}

/// The authorization verb of an update path (PUT) or of a PATCH on it.
fn verb_of(path: UpdatePath, patch: bool) -> Verb {
    match (path, patch) {
        (UpdatePath::Main, false) => Verb::Update,
        (UpdatePath::Approval, false) => Verb::UpdateApproval,
        (UpdatePath::Status, false) => Verb::UpdateStatus,
        (UpdatePath::Main, true) => Verb::Patch,
        (UpdatePath::Approval, true) => Verb::PatchApproval,
        (UpdatePath::Status, true) => Verb::PatchStatus,
    }
}

/// The audit name of a change.
fn change_kind(
    path: UpdatePath,
    body: &CertificateSigningRequest,
    stored: &CertificateSigningRequest,
) -> Kind {
    use crate::conditions::ConditionType;
    let added = |t: ConditionType| {
        crate::conditions::has_condition(body, t) && !crate::conditions::has_condition(stored, t)
    };
    match path {
        UpdatePath::Approval if added(ConditionType::Denied) => Kind::Deny,
        UpdatePath::Approval if added(ConditionType::Approved) => Kind::Approve,
        UpdatePath::Approval => Kind::Approval,
        UpdatePath::Status => Kind::Status,
        UpdatePath::Main => Kind::Update,
    }
}

impl Api {
    /// Reads one stored CSR and authorizes `verb` on it. When it does not exist, the verb-level
    /// permission decides between 403 and 404 (so a stranger learns nothing about names).
    async fn stored(
        &self,
        caller: &Caller,
        verb: Verb,
        name: &str,
    ) -> Result<CertificateSigningRequest, ApiError> {
        let store = self.inner.store.clone();
        let n = name.to_owned();
        let Some((csr, cn)) = blocking(move || store.get_indexed(&n)).await?? else {
            self.authorize_named(caller, verb, None, Some(name))?;
            return Err(ApiError::NotFound {
                name: name.to_owned(),
            });
        };
        self.authorize_named(
            caller,
            verb,
            Some(&facts_of(&csr, cn.as_deref())),
            Some(name),
        )?;
        Ok(csr)
    }

    async fn read_body<B: RequestBody>(
        &self,
        q: &Query,
        req: Request<B>,
    ) -> Result<Decoded, ApiError> {
        if q.get("dryRun").is_some() {
            return Err(bad_request("dryRun is not supported"));
        }
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let format = body_format(ct);
        let fv = FieldValidation::from_query(q)?;
        let Some(format) = format else {
            return Err(ApiError::UnsupportedMediaType);
        };
        let bytes = read_limited(
            req.into_body(),
            self.inner.limits.max_body_bytes,
            self.inner.limits.body_read_timeout,
        )
        .await?;
        match format {
            BodyFormat::Protobuf => Ok(Decoded {
                csr: decode_protobuf(&bytes)?,
                warnings: Vec::new(),
            }),
            BodyFormat::Json => decode_csr(&bytes, fv),
        }
    }

    pub(super) async fn create<B: RequestBody>(
        &self,
        caller: &Caller,
        q: &Query,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let accept = accept(&req);
        let peer = req
            .extensions()
            .get::<super::edge::peer::PeerAddr>()
            .copied();
        let Decoded {
            csr: body,
            warnings,
        } = self.read_body(q, req).await?;
        let name = resolve_name(&body)?;
        // The one parse of spec.request: authorization, limits, node state, the store's index,
        // the audit record and the signature all read this value.
        let request = rules::validate_new(&body, &name)?;
        self.authorize(
            caller,
            Verb::Create,
            Some(&CsrFacts {
                requester_username: &caller.user,
                subject_cn: request.common_name(),
                signer_name: &body.spec.signer_name,
            }),
        )?;
        let csr = self.prepare(body, name, caller)?;
        let stored = self.create_decided(csr, request, caller, peer).await?;
        let latest = &stored.object;
        tracing::info!(csr = ?latest.metadata.name, requester = %caller.user,
            signer = %latest.spec.signer_name, phase = crate::store::phase(latest), "csr created");
        stored_response(StatusCode::CREATED, &stored, accept.as_deref(), &warnings)
    }

    /// Per-node pending cap and create rates (`super::limits`); administrators are exempt.
    /// `pending`: the node's pending CSR count, read by the caller (0 without a node).
    pub(super) fn check_create_limits(
        &self,
        caller: &Caller,
        node: Option<&str>,
        pending: usize,
    ) -> Result<(), ApiError> {
        use crate::api::limits::{CreateAttempt, Decision, Requester};
        let Some(limiter) = &self.inner.limiter else {
            return Ok(());
        };
        // A node renewing its own certificate authenticated with that certificate: the per-node
        // limits target failing bootstrap loops (a shared token re-posting every 32 s); renewals
        // are auto-approved at once and stay bounded by the requester rate.
        let node = node.filter(|n| crate::authz::node_name(caller) != Some(*n));
        let pending_for_node = if node.is_some() { pending } else { 0 };
        let requester = if crate::authz::is_admin(caller, &self.inner.authz) {
            Requester::Admin
        } else {
            Requester::User(&caller.user)
        };
        let attempt = CreateAttempt {
            requester,
            node,
            pending_for_node,
        };
        let decision = limiter
            .lock()
            .map_err(|_| ApiError::Internal("limiter lock poisoned".to_owned()))?
            .check_create(&attempt, std::time::Instant::now());
        match decision {
            Decision::Allow => Ok(()),
            Decision::Throttle { limit, .. } => {
                tracing::info!(requester = %caller.user, ?node, ?limit, "csr create throttled");
                Err(ApiError::Throttled {
                    limit: match limit {
                        crate::api::limits::Limit::PendingPerNode => "pending CSRs per node",
                        crate::api::limits::Limit::NodeRate => "creates per node",
                        crate::api::limits::Limit::RequesterRate => "creates per requester",
                    },
                    retry_after: decision.retry_after_secs().unwrap_or(1),
                })
            }
        }
    }

    /// Server-owned fields on create (reference §1.2).
    fn prepare(
        &self,
        body: CertificateSigningRequest,
        name: String,
        caller: &Caller,
    ) -> Result<CertificateSigningRequest, ApiError> {
        let mut groups = caller.groups.clone();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".to_owned());
        }
        let mut spec = body.spec;
        spec.username = Some(caller.user.clone());
        spec.uid = Some(caller.uid.clone());
        spec.groups = Some(groups);
        spec.extra = if caller.extra.is_empty() {
            None
        } else {
            Some(caller.extra.clone())
        };
        Ok(CertificateSigningRequest {
            metadata: ObjectMeta {
                name: Some(name),
                generate_name: body.metadata.generate_name.filter(|g| !g.is_empty()),
                labels: body.metadata.labels,
                annotations: body.metadata.annotations,
                uid: Some(new_uid()?),
                creation_timestamp: Some(now()),
                ..Default::default()
            },
            spec,
            status: Some(CertificateSigningRequestStatus {
                certificate: None,
                conditions: None,
            }),
        })
    }

    pub(super) async fn get<B>(
        &self,
        caller: &Caller,
        name: &str,
        req: &Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let csr = self.stored(caller, Verb::Get, name).await?;
        object_response(StatusCode::OK, &csr, accept(req).as_deref(), &[])
    }

    pub(super) async fn delete(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Response<ResponseBody>, ApiError> {
        self.stored(caller, Verb::Delete, name).await?;
        let store = self.inner.store.clone();
        let (n, actor) = (name.to_owned(), caller.user.clone());
        let gone = blocking(move || store.delete(&n, &actor)).await??;
        tracing::info!(csr = %name, by = %caller.user, "csr deleted");
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": "certificates.k8s.io", "kind": "certificatesigningrequests",
                        "uid": gone.metadata.uid}});
        Ok(json_response(StatusCode::OK, &status, &[]))
    }

    pub(super) async fn update<B: RequestBody>(
        &self,
        caller: &Caller,
        name: &str,
        path: UpdatePath,
        q: &Query,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let accept = accept(&req);
        let Decoded {
            csr: body,
            warnings,
        } = self.read_body(q, req).await?;
        let stored = self.stored(caller, verb_of(path, false), name).await?;
        let update = Update {
            path,
            body,
            stored,
            warnings,
            accept,
        };
        self.commit_update(caller, name, update).await
    }

    /// PATCH (merge, strategic-merge, JSON patch) on the CSR, `/approval` or `/status`: the
    /// patch is applied to the stored object, then the PUT rules of that endpoint decide, with
    /// the stored resourceVersion as precondition (a concurrent change gives 409).
    pub(super) async fn patch<B: RequestBody>(
        &self,
        caller: &Caller,
        name: &str,
        path: UpdatePath,
        q: &Query,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        use crate::api::codec::patch::{PatchError, PatchKind, apply};
        let accept = accept(&req);
        if q.get("dryRun").is_some() {
            return Err(bad_request("dryRun is not supported"));
        }
        let kind = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(PatchKind::from_content_type)
            .ok_or(ApiError::UnsupportedMediaType)?;
        let fv = FieldValidation::from_query(q)?;
        let bytes = read_limited(
            req.into_body(),
            self.inner.limits.max_body_bytes,
            self.inner.limits.body_read_timeout,
        )
        .await?;
        let stored = self.stored(caller, verb_of(path, true), name).await?;
        let doc = serde_json::to_value(&stored)
            .map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
        let patched = apply(&doc, kind, &bytes).map_err(|e| match e {
            PatchError::TooLarge { max, .. } => ApiError::TooLarge { limit: max },
            e @ (PatchError::OperationFailed { .. } | PatchError::ResultTooLarge) => {
                invalid(name, "FieldValueInvalid", "patch", e.to_string())
            }
            e => bad_request(e.to_string()),
        })?;
        let patched =
            serde_json::to_vec(&patched).map_err(|e| ApiError::Internal(format!("encode: {e}")))?;
        let Decoded {
            csr: mut body,
            warnings,
        } = decode_csr(&patched, fv)?;
        if body.metadata.resource_version.is_none() {
            body.metadata.resource_version = stored.metadata.resource_version.clone();
        }
        let update = Update {
            path,
            body,
            stored,
            warnings,
            accept,
        };
        self.commit_update(caller, name, update).await
    }

    /// One update's transaction: the endpoint's rules on the stored object, audited.
    async fn store_update(
        &self,
        caller: &Caller,
        name: &str,
        ch: Change,
    ) -> Result<CertificateSigningRequest, ApiError> {
        let external = self.inner.external;
        let store = self.inner.store.clone();
        let (n, actor, at) = (name.to_owned(), caller.user.clone(), now());
        let result = blocking(move || {
            let Change {
                path,
                body,
                expected_rv,
                kind,
                written,
            } = ch;
            let certificate = written.as_ref().map(|w| crate::store::CertificateNote {
                serial_hex: &w.serial_hex,
                sha256_hex: &w.sha256_hex,
            });
            store.update_audited(&n, expected_rv, &actor, kind, certificate, |c| {
                match path {
                    UpdatePath::Main => rules::apply_update(c, &body),
                    UpdatePath::Approval => rules::apply_approval(c, &body, &at)?,
                    UpdatePath::Status if external => {
                        super::external_signing::status::apply_status_once(
                            c,
                            &body,
                            &at,
                            written.is_some(),
                        )?;
                    }
                    UpdatePath::Status => rules::apply_status(c, &body, &at)?,
                }
                Ok::<_, ApiError>(None)
            })
        })
        .await?;
        result.map_err(|e| match e {
            UpdateError::Rejected(e) => e,
            UpdateError::Store(e) => e.into(),
        })
    }

    /// The common tail of PUT and PATCH: preconditions, the endpoint's rules in one store
    /// transaction, signing when the change approved the CSR, the response.
    async fn commit_update(
        &self,
        caller: &Caller,
        name: &str,
        u: Update,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let Update {
            path,
            body,
            stored,
            warnings,
            accept,
        } = u;
        if body.metadata.name.as_deref().is_some_and(|n| n != name) {
            return Err(bad_request(
                "the name in the body does not match the name in the URL",
            ));
        }
        let expected_rv = expected_rv(&body, name)?;
        self.admit_update(caller, path, &stored, &body)?;
        let written = self.certificate_to_write(path, name, &stored, &body)?;
        let kind = match &written {
            Some(_) => Kind::CertificateWritten,
            None => change_kind(path, &body, &stored),
        };
        let change = Change {
            path,
            body,
            expected_rv,
            kind,
            written: written.clone(),
        };
        let updated = self.store_update(caller, name, change).await?;
        if let Some(w) = &written {
            tracing::info!(csr = %name, by = %caller.user, serial = %w.serial_hex,
                sha256 = %w.sha256_hex, "certificate written through /status");
        }
        if kind != Kind::Update {
            tracing::info!(csr = %name, by = %caller.user, change = %kind, "csr updated");
        }
        let latest = if crate::conditions::needs_signing(&updated) && !self.inner.external {
            self.sign_now(name).await?.unwrap_or(updated)
        } else {
            updated
        };
        object_response(StatusCode::OK, &latest, accept.as_deref(), &warnings)
    }
}

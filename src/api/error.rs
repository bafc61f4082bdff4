//! The ONE place where errors become HTTP: every failure is answered with a Kubernetes `Status`
//! (code, reason, client-safe message, field causes). Internal detail goes only to tracing.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde_json::json;

use super::body::{ResponseBody, full};
use crate::store::StoreError;

/// One field-level cause of a 422 Invalid (or 400 strict decoding) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`.
    pub reason: &'static str,
    /// The field path (`spec.usages[1]`).
    pub field: String,
    /// What is wrong, safe for the client.
    pub message: String,
}

/// Everything the API can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (bad JSON, bad query parameter, wrong apiVersion/kind) — 400.
    #[error("bad request: {message}")]
    BadRequest {
        /// Client-safe message.
        message: String,
    },
    /// No or bad credentials — 401.
    #[error("unauthorized")]
    Unauthorized,
    /// Not allowed — 403.
    #[error("forbidden: {message}")]
    Forbidden {
        /// Client-safe message (user, verb, resource).
        message: String,
    },
    /// No such object or path — 404.
    #[error("not found: {name}")]
    NotFound {
        /// The object or path name.
        name: String,
    },
    /// No such path — 404 (not an object).
    #[error("no route for {path}")]
    NoRoute {
        /// The path asked for.
        path: String,
    },
    /// The method is not allowed on the path — 405 with the methods that are (`Allow`,
    /// RFC 9110 §15.5.6).
    #[error("method not allowed (allowed: {allow})")]
    MethodNotAllowed {
        /// The `Allow` header value, e.g. `"GET, POST"`.
        allow: &'static str,
    },
    /// A refusal about another kind of object (Leases: not found, already exists, conflict,
    /// invalid), already in `Status` terms (code, reason, client-safe message, details).
    #[error("{reason}: {message}")]
    ObjectStatus {
        /// HTTP code.
        code: StatusCode,
        /// Kubernetes reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
        reason: &'static str,
        /// Client-safe message.
        message: String,
        /// `details` (name, group, kind, causes).
        details: Option<serde_json::Value>,
    },
    /// A CSR of that name exists — 409 AlreadyExists.
    #[error("already exists: {name}")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// Stale resourceVersion — 409 Conflict.
    #[error("conflict on {name}")]
    Conflict {
        /// The name.
        name: String,
    },
    /// A watch from a resourceVersion that is too old — 410 Expired.
    #[error("resourceVersion too old")]
    Expired,
    /// Body over the limit — 413.
    #[error("request entity too large (limit {limit} bytes)")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Unsupported request media type — 415.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// No response encoding the client accepts (JSON, or protobuf for single objects) — 406.
    #[error("not acceptable")]
    NotAcceptable,
    /// Too many concurrent watches, or requests in flight — 429 with Retry-After.
    #[error("too many requests")]
    TooManyRequests,
    /// A create limit (pending per node, node or requester rate) — 429 with Retry-After.
    #[error("create throttled ({limit}); retry after {retry_after}s")]
    Throttled {
        /// Which limit.
        limit: &'static str,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Validation failed — 422 Invalid with field causes.
    #[error("invalid {name}: {causes:?}")]
    Invalid {
        /// The object name.
        name: String,
        /// The field causes.
        causes: Vec<Cause>,
    },
    /// The store or another internal part failed — 500, no detail to the client.
    #[error("internal error: {0}")]
    Internal(String),
    /// Temporarily unable (store down) — 503.
    #[error("service unavailable")]
    Unavailable,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists { name } => ApiError::AlreadyExists { name },
            StoreError::NotFound { name } => ApiError::NotFound { name },
            StoreError::Conflict { name, .. } => ApiError::Conflict { name },
            StoreError::Expired { .. } => ApiError::Expired,
            // Nothing was written; clients retry after Retry-After once space returns.
            full if full.is_storage_full() => {
                tracing::error!(error = %full, "the data dir is full: writes refused");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

const GROUP: &str = "certificates.k8s.io";
const KIND: &str = "certificatesigningrequests";

impl ApiError {
    /// HTTP code and Kubernetes reason.
    pub fn code_reason(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => {
                (StatusCode::NOT_FOUND, "NotFound")
            }
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
            }
            ApiError::AlreadyExists { .. } => (StatusCode::CONFLICT, "AlreadyExists"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "Conflict"),
            ApiError::ObjectStatus { code, reason, .. } => (*code, reason),
            ApiError::Expired => (StatusCode::GONE, "Expired"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            ApiError::NotAcceptable => (StatusCode::NOT_ACCEPTABLE, "NotAcceptable"),
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::TooManyRequests | ApiError::Throttled { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        }
    }

    /// The `Status` object (also used as a watch ERROR event's object).
    pub fn status_json(&self) -> serde_json::Value {
        let (code, reason) = self.code_reason();
        let (message, details) = match self {
            ApiError::BadRequest { message } | ApiError::Forbidden { message } => {
                (message.clone(), None)
            }
            ApiError::Unauthorized => ("Unauthorized".to_owned(), None),
            ApiError::ObjectStatus {
                message, details, ..
            } => (message.clone(), details.clone()),
            ApiError::NotFound { name } => (
                format!("{KIND}.{GROUP} \"{name}\" not found"),
                Some(json!({"name": name, "group": GROUP, "kind": KIND})),
            ),
            ApiError::NoRoute { .. } => (
                "the server could not find the requested resource".to_owned(),
                None,
            ),
            ApiError::MethodNotAllowed { .. } => ("the server does not allow this method on the requested resource".to_owned(), None),
            ApiError::AlreadyExists { name } => (
                format!("{KIND}.{GROUP} \"{name}\" already exists"),
                Some(json!({"name": name, "group": GROUP, "kind": KIND})),
            ),
            ApiError::Conflict { name } => (
                format!("Operation cannot be fulfilled on {KIND}.{GROUP} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
                Some(json!({"name": name, "group": GROUP, "kind": KIND})),
            ),
            ApiError::Expired => ("too old resource version".to_owned(), None),
            ApiError::TooLarge { limit } => (
                format!("the request body is larger than the limit of {limit} bytes"),
                None,
            ),
            ApiError::UnsupportedMediaType => (
                "the body of the request was in an unknown format - accepted media types include: application/json".to_owned(),
                None,
            ),
            ApiError::NotAcceptable => (
                "none of the accepted media types can be produced - supported: application/json (and application/vnd.kubernetes.protobuf for single objects)".to_owned(),
                None,
            ),
            ApiError::Invalid { name, causes } => {
                let summary: Vec<String> = causes
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect();
                (
                    format!(
                        "CertificateSigningRequest.{GROUP} \"{name}\" is invalid: {}",
                        summary.join(", ")
                    ),
                    Some(json!({
                        "name": name, "group": GROUP, "kind": "CertificateSigningRequest",
                        "causes": causes.iter().map(|c| json!({
                            "reason": c.reason, "message": c.message, "field": c.field
                        })).collect::<Vec<_>>()
                    })),
                )
            }
            ApiError::Throttled { retry_after, .. } => (
                "too many certificate signing requests, try again later".to_owned(),
                Some(json!({"retryAfterSeconds": retry_after})),
            ),
            ApiError::TooManyRequests => ("too many requests, try again later".to_owned(), None),
            ApiError::Internal(_) => ("an internal error occurred".to_owned(), None),
            ApiError::Unavailable => ("the service is temporarily unavailable".to_owned(), None),
        };
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        });
        if let (Some(d), Some(obj)) = (details, status.as_object_mut()) {
            obj.insert("details".to_owned(), d);
        }
        status
    }

    /// The HTTP response. Logs internal detail at the right level.
    pub fn into_response(self) -> Response<ResponseBody> {
        let (code, _) = self.code_reason();
        if code.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let body = Bytes::from(self.status_json().to_string());
        let mut resp = Response::new(full(body));
        *resp.status_mut() = code;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        if let ApiError::MethodNotAllowed { allow } = &self {
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        }
        if let ApiError::Throttled { retry_after, .. } = &self
            && let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        } else if matches!(self, ApiError::TooManyRequests | ApiError::Unavailable) {
            // client-go waits this long and retries (it honours Retry-After on 429 and 503).
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        resp
    }
}

/// Seconds a client should wait after a 429/503 (short: watch slots and the store free quickly).
const RETRY_AFTER_SECONDS: &str = "1";

/// One-cause 422.
pub fn invalid(
    name: &str,
    reason: &'static str,
    field: &str,
    message: impl Into<String>,
) -> ApiError {
    ApiError::Invalid {
        name: name.to_owned(),
        causes: vec![Cause {
            reason,
            field: field.to_owned(),
            message: message.into(),
        }],
    }
}

/// 400 with a message.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        message: message.into(),
    }
}

//! Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) for CSRs.
//!
//! Kubelets with certificate rotation on send their CSR-create body as protobuf (reference
//! §4.1, §6.6): the 4 magic bytes `k8s\0`, then a `runtime.Unknown` envelope
//! `{1 typeMeta{1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType}` whose `raw` is
//! the `CertificateSigningRequest` message (field numbers in reference §1.1, ObjectMeta numbers
//! in §6.6). The messages are declared here by hand with `prost` derives (no build script).
//!
//! # How the API calls it
//! - Request bodies (create, PUT on the CSR, `/approval`, `/status`) with
//!   `Content-Type: application/vnd.kubernetes.protobuf`: [`decode_csr`] on the body bytes
//!   (already limited to the API's body cap); an `Err` is a 400 `BadRequest` Status whose
//!   message is the error's `Display` (client-safe: it names no internals). The decoded value is
//!   then handled exactly like a JSON body.
//! - Responses to a client whose `Accept` lists only protobuf: [`encode_csr`].
//!
//! Differences from Go that are on purpose: `Time.nanos` is ignored on decode (Go does the
//! same: JSON carries seconds only), `ownerReferences` and `managedFields` are skipped (a CSR
//! never needs them), and empty strings/lists become `None` as `omitempty` JSON would.
//!
//! Bounds: the body size ([`MAX_BODY_BYTES`], checked first), and nesting: the declared
//! messages are at most 4 deep (CSR → status → condition → Time), and deeper nesting can only
//! come from skipped unknown fields (groups), which `prost` refuses past its recursion limit of
//! 100, so decoding never recurses without bound (tested with 100,000 nested groups).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1 as certv1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use k8s_openapi::jiff::Timestamp;
use prost::Message;

/// The 4-byte prefix of every Kubernetes protobuf body (`k8s\0`).
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The only `apiVersion` accepted in the envelope.
pub const API_VERSION: &str = "certificates.k8s.io/v1";

/// The only `kind` accepted in the envelope.
pub const KIND: &str = "CertificateSigningRequest";

/// Largest protobuf body accepted, in bytes: the apiserver's 3 MiB request limit (reference
/// §6.5). The API's own body cap should be no larger; this bound holds even if it is.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Why a protobuf body was refused. Every variant is a client error (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtobufError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("protobuf body of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body does not start with `k8s\0`.
    #[error("protobuf body does not start with the Kubernetes magic prefix")]
    BadMagic,
    /// The `runtime.Unknown` envelope is not valid protobuf (truncated, bad length, bad UTF-8).
    #[error("malformed protobuf envelope: {0}")]
    Envelope(prost::DecodeError),
    /// The envelope names another type.
    #[error("protobuf body is {api_version}/{kind}, expected {API_VERSION}/{KIND}")]
    WrongKind {
        /// `typeMeta.apiVersion` sent.
        api_version: String,
        /// `typeMeta.kind` sent.
        kind: String,
    },
    /// `contentEncoding` or `contentType` in the envelope is not the plain protobuf one.
    #[error("unsupported protobuf envelope encoding {content_encoding:?} / type {content_type:?}")]
    UnsupportedEncoding {
        /// `contentEncoding` sent.
        content_encoding: String,
        /// `contentType` sent.
        content_type: String,
    },
    /// The envelope carries no `raw` object bytes.
    #[error("protobuf envelope carries no object")]
    MissingObject,
    /// The `CertificateSigningRequest` message is not valid protobuf.
    #[error("malformed CertificateSigningRequest message: {0}")]
    Message(prost::DecodeError),
    /// A `Time` is outside the representable range.
    #[error("timestamp {seconds} seconds is out of range")]
    TimeOutOfRange {
        /// The seconds sent.
        seconds: i64,
    },
}

/// `runtime.TypeMeta` (apimachinery `runtime/generated.proto`).
#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

/// `runtime.Unknown`: the envelope around every protobuf object.
#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    content_type: Option<String>,
}

/// `meta.v1.Time` on the wire (`Timestamp`).
#[derive(Clone, PartialEq, Message)]
struct TimeMsg {
    #[prost(int64, optional, tag = "1")]
    seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    nanos: Option<i32>,
}

/// `meta.v1.ObjectMeta`, the fields a CSR uses.
#[derive(Clone, PartialEq, Message)]
struct ObjectMetaMsg {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    generate_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "4")]
    self_link: Option<String>,
    #[prost(string, optional, tag = "5")]
    uid: Option<String>,
    #[prost(string, optional, tag = "6")]
    resource_version: Option<String>,
    #[prost(int64, optional, tag = "7")]
    generation: Option<i64>,
    #[prost(message, optional, tag = "8")]
    creation_timestamp: Option<TimeMsg>,
    #[prost(message, optional, tag = "9")]
    deletion_timestamp: Option<TimeMsg>,
    #[prost(int64, optional, tag = "10")]
    deletion_grace_period_seconds: Option<i64>,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
}

/// `certificates.v1.ExtraValue`.
#[derive(Clone, PartialEq, Message)]
struct ExtraValueMsg {
    #[prost(string, repeated, tag = "1")]
    items: Vec<String>,
}

/// `certificates.v1.CertificateSigningRequestSpec`.
#[derive(Clone, PartialEq, Message)]
struct SpecMsg {
    #[prost(bytes = "vec", optional, tag = "1")]
    request: Option<Vec<u8>>,
    #[prost(string, optional, tag = "2")]
    username: Option<String>,
    #[prost(string, optional, tag = "3")]
    uid: Option<String>,
    #[prost(string, repeated, tag = "4")]
    groups: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    usages: Vec<String>,
    #[prost(btree_map = "string, message", tag = "6")]
    extra: BTreeMap<String, ExtraValueMsg>,
    #[prost(string, optional, tag = "7")]
    signer_name: Option<String>,
    #[prost(int32, optional, tag = "8")]
    expiration_seconds: Option<i32>,
}

/// `certificates.v1.CertificateSigningRequestCondition`.
#[derive(Clone, PartialEq, Message)]
struct ConditionMsg {
    #[prost(string, optional, tag = "1")]
    type_: Option<String>,
    #[prost(string, optional, tag = "2")]
    reason: Option<String>,
    #[prost(string, optional, tag = "3")]
    message: Option<String>,
    #[prost(message, optional, tag = "4")]
    last_update_time: Option<TimeMsg>,
    #[prost(message, optional, tag = "5")]
    last_transition_time: Option<TimeMsg>,
    #[prost(string, optional, tag = "6")]
    status: Option<String>,
}

/// `certificates.v1.CertificateSigningRequestStatus`.
#[derive(Clone, PartialEq, Message)]
struct StatusMsg {
    #[prost(message, repeated, tag = "1")]
    conditions: Vec<ConditionMsg>,
    #[prost(bytes = "vec", optional, tag = "2")]
    certificate: Option<Vec<u8>>,
}

/// `certificates.v1.CertificateSigningRequest`.
#[derive(Clone, PartialEq, Message)]
struct CsrMsg {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMetaMsg>,
    #[prost(message, optional, tag = "2")]
    spec: Option<SpecMsg>,
    #[prost(message, optional, tag = "3")]
    status: Option<StatusMsg>,
}

/// Decodes a protobuf request body (`k8s\0` + envelope + CSR) into a CSR.
///
/// The API calls this for every CSR body sent as `application/vnd.kubernetes.protobuf`
/// (create, PUT, `/approval`, `/status`); an error is a 400 `BadRequest`.
pub fn decode_csr(body: &[u8]) -> Result<certv1::CertificateSigningRequest, ProtobufError> {
    let raw = open_envelope(body)?;
    let msg = CsrMsg::decode(raw.as_slice()).map_err(ProtobufError::Message)?;
    csr_from_msg(msg)
}

/// Checks the size and magic, decodes the envelope, checks its type, and returns `raw`.
fn open_envelope(body: &[u8]) -> Result<Vec<u8>, ProtobufError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ProtobufError::TooLarge {
            len: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    let rest = body.strip_prefix(&MAGIC).ok_or(ProtobufError::BadMagic)?;
    let unknown = Unknown::decode(rest).map_err(ProtobufError::Envelope)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if api_version != API_VERSION || kind != KIND {
        return Err(ProtobufError::WrongKind { api_version, kind });
    }
    let content_encoding = unknown.content_encoding.unwrap_or_default();
    let content_type = unknown.content_type.unwrap_or_default();
    let type_ok = content_type.is_empty() || content_type == "application/vnd.kubernetes.protobuf";
    if !content_encoding.is_empty() || !type_ok {
        return Err(ProtobufError::UnsupportedEncoding {
            content_encoding,
            content_type,
        });
    }
    unknown.raw.ok_or(ProtobufError::MissingObject)
}

/// Encodes a CSR as a Kubernetes protobuf body (`k8s\0` + envelope + CSR), as client-go does.
///
/// The API calls this only for clients whose `Accept` allows protobuf but not JSON.
pub fn encode_csr(csr: &certv1::CertificateSigningRequest) -> Vec<u8> {
    envelope(API_VERSION, KIND, encode_csr_message(csr))
}

/// The bare `CertificateSigningRequest` message (no magic, no envelope), as embedded in lists.
pub(super) fn encode_csr_message(csr: &certv1::CertificateSigningRequest) -> Vec<u8> {
    csr_to_msg(csr).encode_to_vec()
}

/// `k8s\0` + a `runtime.Unknown` envelope of the given type around `raw`.
pub(super) fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = Vec::with_capacity(MAGIC.len() + unknown.encoded_len());
    out.extend_from_slice(&MAGIC);
    unknown.encode_raw(&mut out);
    out
}

/// `Some(s)` unless `s` is absent or empty (JSON `omitempty`).
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

/// `Some(v)` unless `v` is empty (JSON `omitempty`).
fn non_empty_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    if v.is_empty() { None } else { Some(v) }
}

/// `Some(m)` unless `m` is empty (JSON `omitempty`).
fn non_empty_map<K, V>(m: BTreeMap<K, V>) -> Option<BTreeMap<K, V>> {
    if m.is_empty() { None } else { Some(m) }
}

/// A wire `Time` to an optional timestamp. An empty message is Go's zero time (JSON `null`);
/// nanos are ignored as Go ignores them.
fn time_from_msg(t: Option<TimeMsg>) -> Result<Option<metav1::Time>, ProtobufError> {
    let Some(seconds) = t.and_then(|t| t.seconds) else {
        return Ok(None);
    };
    Timestamp::new(seconds, 0)
        .map(|ts| Some(metav1::Time(ts)))
        .map_err(|_| ProtobufError::TimeOutOfRange { seconds })
}

/// A timestamp to a wire `Time` (seconds only, nanos 0, as Go writes it).
fn time_to_msg(t: Option<&metav1::Time>) -> Option<TimeMsg> {
    t.map(|t| TimeMsg {
        seconds: Some(t.0.as_second()),
        nanos: Some(0),
    })
}

fn meta_from_msg(m: ObjectMetaMsg) -> Result<metav1::ObjectMeta, ProtobufError> {
    Ok(metav1::ObjectMeta {
        name: non_empty(m.name),
        generate_name: non_empty(m.generate_name),
        namespace: non_empty(m.namespace),
        self_link: non_empty(m.self_link),
        uid: non_empty(m.uid),
        resource_version: non_empty(m.resource_version),
        generation: m.generation.filter(|g| *g != 0),
        creation_timestamp: time_from_msg(m.creation_timestamp)?,
        deletion_timestamp: time_from_msg(m.deletion_timestamp)?,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        labels: non_empty_map(m.labels),
        annotations: non_empty_map(m.annotations),
        finalizers: non_empty_vec(m.finalizers),
        ..metav1::ObjectMeta::default()
    })
}

fn meta_to_msg(m: &metav1::ObjectMeta) -> ObjectMetaMsg {
    ObjectMetaMsg {
        name: m.name.clone(),
        generate_name: m.generate_name.clone(),
        namespace: m.namespace.clone(),
        self_link: m.self_link.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        generation: m.generation,
        creation_timestamp: time_to_msg(m.creation_timestamp.as_ref()),
        deletion_timestamp: time_to_msg(m.deletion_timestamp.as_ref()),
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        labels: m.labels.clone().unwrap_or_default(),
        annotations: m.annotations.clone().unwrap_or_default(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
    }
}

fn spec_from_msg(s: SpecMsg) -> certv1::CertificateSigningRequestSpec {
    let extra = s.extra.into_iter().map(|(k, v)| (k, v.items)).collect();
    certv1::CertificateSigningRequestSpec {
        request: ByteString(s.request.unwrap_or_default()),
        username: non_empty(s.username),
        uid: non_empty(s.uid),
        groups: non_empty_vec(s.groups),
        usages: non_empty_vec(s.usages),
        extra: non_empty_map(extra),
        signer_name: s.signer_name.unwrap_or_default(),
        expiration_seconds: s.expiration_seconds,
    }
}

fn spec_to_msg(s: &certv1::CertificateSigningRequestSpec) -> SpecMsg {
    let extra = s.extra.iter().flatten();
    SpecMsg {
        request: Some(s.request.0.clone()),
        username: s.username.clone(),
        uid: s.uid.clone(),
        groups: s.groups.clone().unwrap_or_default(),
        usages: s.usages.clone().unwrap_or_default(),
        extra: extra
            .map(|(k, v)| (k.clone(), ExtraValueMsg { items: v.clone() }))
            .collect(),
        signer_name: Some(s.signer_name.clone()),
        expiration_seconds: s.expiration_seconds,
    }
}

fn condition_from_msg(
    c: ConditionMsg,
) -> Result<certv1::CertificateSigningRequestCondition, ProtobufError> {
    Ok(certv1::CertificateSigningRequestCondition {
        type_: c.type_.unwrap_or_default(),
        status: c.status.unwrap_or_default(),
        reason: non_empty(c.reason),
        message: non_empty(c.message),
        last_update_time: time_from_msg(c.last_update_time)?,
        last_transition_time: time_from_msg(c.last_transition_time)?,
    })
}

fn condition_to_msg(c: &certv1::CertificateSigningRequestCondition) -> ConditionMsg {
    ConditionMsg {
        type_: Some(c.type_.clone()),
        reason: c.reason.clone(),
        message: c.message.clone(),
        last_update_time: time_to_msg(c.last_update_time.as_ref()),
        last_transition_time: time_to_msg(c.last_transition_time.as_ref()),
        status: Some(c.status.clone()),
    }
}

fn status_from_msg(s: StatusMsg) -> Result<certv1::CertificateSigningRequestStatus, ProtobufError> {
    let conditions = s
        .conditions
        .into_iter()
        .map(condition_from_msg)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(certv1::CertificateSigningRequestStatus {
        conditions: non_empty_vec(conditions),
        certificate: s.certificate.filter(|c| !c.is_empty()).map(ByteString),
    })
}

fn status_to_msg(s: &certv1::CertificateSigningRequestStatus) -> StatusMsg {
    StatusMsg {
        conditions: s
            .conditions
            .iter()
            .flatten()
            .map(condition_to_msg)
            .collect(),
        certificate: s.certificate.as_ref().map(|c| c.0.clone()),
    }
}

fn csr_from_msg(m: CsrMsg) -> Result<certv1::CertificateSigningRequest, ProtobufError> {
    Ok(certv1::CertificateSigningRequest {
        metadata: meta_from_msg(m.metadata.unwrap_or_default())?,
        spec: spec_from_msg(m.spec.unwrap_or_default()),
        status: m.status.map(status_from_msg).transpose()?,
    })
}

fn csr_to_msg(c: &certv1::CertificateSigningRequest) -> CsrMsg {
    CsrMsg {
        metadata: Some(meta_to_msg(&c.metadata)),
        spec: Some(spec_to_msg(&c.spec)),
        status: c.status.as_ref().map(status_to_msg),
    }
}

#[cfg(test)]
mod tests;

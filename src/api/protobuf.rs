//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`): client-go's typed clients
//! (kubectl's `certificate approve`, kubelets on the rotation path) send these. The envelope is
//! `k8s\0` + `runtime.Unknown`; the CSR message uses the field numbers of reference §1.1/§6.6.
//! Decoded with `prost` into small mirror messages, then converted to the k8s-openapi type so
//! the same rules apply as for JSON. (Responses stay JSON: client-go decodes by Content-Type.)

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use prost::Message;

use super::decode::KIND;
use super::discovery::GROUP_VERSION;
use super::error::{ApiError, bad_request};

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
    #[prost(string, tag = "3")]
    content_encoding: String,
    #[prost(string, tag = "4")]
    content_type: String,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, tag = "1")]
    api_version: String,
    #[prost(string, tag = "2")]
    kind: String,
}

#[derive(Clone, PartialEq, Message)]
struct PbTime {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
struct PbMeta {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    generate_name: String,
    #[prost(string, tag = "5")]
    uid: String,
    #[prost(string, tag = "6")]
    resource_version: String,
    #[prost(message, optional, tag = "8")]
    creation_timestamp: Option<PbTime>,
    #[prost(map = "string, string", tag = "11")]
    labels: HashMap<String, String>,
    #[prost(map = "string, string", tag = "12")]
    annotations: HashMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
struct ExtraValue {
    #[prost(string, repeated, tag = "1")]
    items: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct PbSpec {
    #[prost(bytes = "vec", tag = "1")]
    request: Vec<u8>,
    #[prost(string, tag = "2")]
    username: String,
    #[prost(string, tag = "3")]
    uid: String,
    #[prost(string, repeated, tag = "4")]
    groups: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    usages: Vec<String>,
    #[prost(map = "string, message", tag = "6")]
    extra: HashMap<String, ExtraValue>,
    #[prost(string, tag = "7")]
    signer_name: String,
    #[prost(int32, optional, tag = "8")]
    expiration_seconds: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct PbCondition {
    #[prost(string, tag = "1")]
    type_: String,
    #[prost(string, tag = "2")]
    reason: String,
    #[prost(string, tag = "3")]
    message: String,
    #[prost(message, optional, tag = "4")]
    last_update_time: Option<PbTime>,
    #[prost(message, optional, tag = "5")]
    last_transition_time: Option<PbTime>,
    #[prost(string, tag = "6")]
    status: String,
}

#[derive(Clone, PartialEq, Message)]
struct PbStatus {
    #[prost(message, repeated, tag = "1")]
    conditions: Vec<PbCondition>,
    #[prost(bytes = "vec", tag = "2")]
    certificate: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct PbCsr {
    #[prost(message, optional, tag = "1")]
    metadata: Option<PbMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<PbSpec>,
    #[prost(message, optional, tag = "3")]
    status: Option<PbStatus>,
}

fn time(t: Option<PbTime>) -> Result<Option<Time>, ApiError> {
    match t {
        // Go's zero time marshals as seconds = -62135596800; treat it (and absence) as unset.
        None => Ok(None),
        Some(t) if t.seconds <= 0 => Ok(None),
        Some(t) => k8s_openapi::jiff::Timestamp::from_second(t.seconds)
            .map(|ts| Some(Time(ts)))
            .map_err(|_| bad_request("time out of range")),
    }
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn map(m: HashMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then(|| m.into_iter().collect())
}

fn condition(c: PbCondition) -> Result<CertificateSigningRequestCondition, ApiError> {
    Ok(CertificateSigningRequestCondition {
        type_: c.type_,
        status: c.status,
        reason: opt(c.reason),
        message: opt(c.message),
        last_update_time: time(c.last_update_time)?,
        last_transition_time: time(c.last_transition_time)?,
    })
}

/// Decodes a protobuf CSR body.
pub fn decode_csr(bytes: &[u8]) -> Result<CertificateSigningRequest, ApiError> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad_request("protobuf body without the k8s envelope"))?;
    let unknown = Unknown::decode(body).map_err(|_| bad_request("malformed protobuf envelope"))?;
    if let Some(tm) = &unknown.type_meta
        && ((!tm.api_version.is_empty() && tm.api_version != GROUP_VERSION)
            || (!tm.kind.is_empty() && tm.kind != KIND))
    {
        return Err(bad_request(format!(
            "the body must be a {GROUP_VERSION} {KIND}"
        )));
    }
    if !unknown.content_encoding.is_empty() {
        return Err(ApiError::UnsupportedMediaType);
    }
    let pb = PbCsr::decode(unknown.raw.as_slice())
        .map_err(|_| bad_request("malformed protobuf CertificateSigningRequest"))?;
    let meta = pb.metadata.unwrap_or_default();
    let spec = pb.spec.unwrap_or_default();
    let status = pb.status.map(|s| -> Result<_, ApiError> {
        Ok(CertificateSigningRequestStatus {
            conditions: Some(
                s.conditions
                    .into_iter()
                    .map(condition)
                    .collect::<Result<_, _>>()?,
            ),
            certificate: (!s.certificate.is_empty()).then_some(ByteString(s.certificate)),
        })
    });
    Ok(CertificateSigningRequest {
        metadata: ObjectMeta {
            name: opt(meta.name),
            generate_name: opt(meta.generate_name),
            uid: opt(meta.uid),
            resource_version: opt(meta.resource_version),
            creation_timestamp: time(meta.creation_timestamp)?,
            labels: map(meta.labels),
            annotations: map(meta.annotations),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(spec.request),
            signer_name: spec.signer_name,
            expiration_seconds: spec.expiration_seconds,
            usages: Some(spec.usages),
            username: opt(spec.username),
            uid: opt(spec.uid),
            groups: Some(spec.groups),
            extra: (!spec.extra.is_empty())
                .then(|| spec.extra.into_iter().map(|(k, v)| (k, v.items)).collect()),
        },
        status: status.transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_envelope() {
        let csr = PbCsr {
            metadata: Some(PbMeta {
                name: "x".into(),
                resource_version: "7".into(),
                ..Default::default()
            }),
            spec: Some(PbSpec {
                signer_name: "a.io/b".into(),
                usages: vec!["client auth".into()],
                ..Default::default()
            }),
            status: Some(PbStatus {
                conditions: vec![PbCondition {
                    type_: "Approved".into(),
                    status: "True".into(),
                    last_update_time: Some(PbTime {
                        seconds: 1_700_000_000,
                        nanos: 0,
                    }),
                    ..Default::default()
                }],
                certificate: Vec::new(),
            }),
        };
        let env = Unknown {
            type_meta: Some(TypeMeta {
                api_version: GROUP_VERSION.into(),
                kind: KIND.into(),
            }),
            raw: csr.encode_to_vec(),
            ..Default::default()
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend(env.encode_to_vec());
        let got = decode_csr(&bytes).unwrap();
        assert_eq!(got.metadata.resource_version.as_deref(), Some("7"));
        let conds = got.status.unwrap().conditions.unwrap();
        assert_eq!(conds[0].type_, "Approved");
        assert!(conds[0].last_update_time.is_some());
        assert!(decode_csr(b"k8s\0\xff\xff").is_err());
        assert!(decode_csr(b"nope").is_err());
    }
}

//! Protobuf responses beyond a single CSR: the CSR list, the `Status` error body, and watch
//! events (`application/vnd.kubernetes.protobuf;stream=watch`, reference §6.5).
//!
//! Wire shapes (apimachinery `generated.proto`): a list is `k8s\0` + `runtime.Unknown`
//! `{certificates.k8s.io/v1, CertificateSigningRequestList}` around
//! `{1 ListMeta{1 selfLink, 2 resourceVersion, 3 continue, 4 remainingItemCount}, 2 items}`.
//! `Status` is `{1 ListMeta, 2 status, 3 message, 4 reason, 5 details, 6 code}` in a `v1/Status`
//! envelope. A watch stream is a sequence of frames, each a 4-byte big-endian length and a
//! bare (no magic, no envelope) `WatchEvent{1 type, 2 RawExtension{1 raw}}` whose `raw` is the
//! full enveloped object, as apiserver's `LengthDelimitedFramer` and embedded encoder write it.
//!
//! # How the API calls it
//! Only for clients whose `Accept` allows protobuf but not JSON (kubelets accept JSON, so
//! normally never): LIST → [`encode_csr_list`]; an error `Status` → [`encode_status`]; each watch
//! event → [`encode_watch_frame`] with the event's object bytes from
//! [`super::protobuf::encode_csr`] (ADDED/MODIFIED/DELETED/BOOKMARK) or [`encode_status`] (ERROR),
//! written and flushed per frame, with `Content-Type:
//! application/vnd.kubernetes.protobuf;stream=watch`.

use k8s_openapi::api::certificates::v1 as certv1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use prost::Message;

use super::protobuf::{API_VERSION, encode_csr_message, envelope};

/// The list kind in the envelope.
pub const LIST_KIND: &str = "CertificateSigningRequestList";

/// The content type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Watch event types (reference §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A new object (also the initial state).
    Added,
    /// A changed object.
    Modified,
    /// A deleted object (its last state).
    Deleted,
    /// A resource-version marker (object carries only `metadata.resourceVersion`).
    Bookmark,
    /// An error; the object is a `Status`.
    Error,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Bookmark => "BOOKMARK",
            EventType::Error => "ERROR",
        }
    }
}

/// Why an event could not be framed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The event is larger than a 4-byte length prefix can carry.
    #[error("watch event of {len} bytes does not fit a protobuf frame")]
    TooLarge {
        /// Encoded event length.
        len: usize,
    },
}

#[derive(Clone, PartialEq, Message)]
struct ListMetaMsg {
    #[prost(string, optional, tag = "1")]
    self_link: Option<String>,
    #[prost(string, optional, tag = "2")]
    resource_version: Option<String>,
    #[prost(string, optional, tag = "3")]
    continue_: Option<String>,
    #[prost(int64, optional, tag = "4")]
    remaining_item_count: Option<i64>,
}

/// `CertificateSigningRequestList`, items kept as already-encoded CSR messages (a message
/// field and a bytes field are the same on the wire).
#[derive(Clone, PartialEq, Message)]
struct CsrListMsg {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMetaMsg>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    items: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct StatusCauseMsg {
    #[prost(string, optional, tag = "1")]
    reason: Option<String>,
    #[prost(string, optional, tag = "2")]
    message: Option<String>,
    #[prost(string, optional, tag = "3")]
    field: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct StatusDetailsMsg {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    group: Option<String>,
    #[prost(string, optional, tag = "3")]
    kind: Option<String>,
    #[prost(message, repeated, tag = "4")]
    causes: Vec<StatusCauseMsg>,
    #[prost(int32, optional, tag = "5")]
    retry_after_seconds: Option<i32>,
    #[prost(string, optional, tag = "6")]
    uid: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct StatusMsg {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMetaMsg>,
    #[prost(string, optional, tag = "2")]
    status: Option<String>,
    #[prost(string, optional, tag = "3")]
    message: Option<String>,
    #[prost(string, optional, tag = "4")]
    reason: Option<String>,
    #[prost(message, optional, tag = "5")]
    details: Option<StatusDetailsMsg>,
    #[prost(int32, optional, tag = "6")]
    code: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct RawExtensionMsg {
    #[prost(bytes = "vec", optional, tag = "1")]
    raw: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct WatchEventMsg {
    #[prost(string, optional, tag = "1")]
    type_: Option<String>,
    #[prost(message, optional, tag = "2")]
    object: Option<RawExtensionMsg>,
}

fn list_meta(m: &metav1::ListMeta) -> ListMetaMsg {
    ListMetaMsg {
        self_link: m.self_link.clone(),
        resource_version: m.resource_version.clone(),
        continue_: m.continue_.clone(),
        remaining_item_count: m.remaining_item_count,
    }
}

/// Encodes a CSR list (`k8s\0` + envelope + list message).
pub fn encode_csr_list(list: &k8s_openapi::List<certv1::CertificateSigningRequest>) -> Vec<u8> {
    let msg = CsrListMsg {
        metadata: Some(list_meta(&list.metadata)),
        items: list.items.iter().map(encode_csr_message).collect(),
    };
    envelope(API_VERSION, LIST_KIND, msg.encode_to_vec())
}

/// Encodes a `Status` (`k8s\0` + `v1/Status` envelope + message).
pub fn encode_status(status: &metav1::Status) -> Vec<u8> {
    let details = status.details.as_ref().map(|d| StatusDetailsMsg {
        name: d.name.clone(),
        group: d.group.clone(),
        kind: d.kind.clone(),
        causes: d
            .causes
            .iter()
            .flatten()
            .map(|c| StatusCauseMsg {
                reason: c.reason.clone(),
                message: c.message.clone(),
                field: c.field.clone(),
            })
            .collect(),
        retry_after_seconds: d.retry_after_seconds,
        uid: d.uid.clone(),
    });
    let msg = StatusMsg {
        metadata: Some(list_meta(&status.metadata)),
        status: status.status.clone(),
        message: status.message.clone(),
        reason: status.reason.clone(),
        details,
        code: status.code,
    };
    envelope("v1", "Status", msg.encode_to_vec())
}

/// One watch frame: 4-byte big-endian length + `WatchEvent{type, object{raw: object}}`.
/// `object` is the enveloped object ([`super::protobuf::encode_csr`] or [`encode_status`]).
pub fn encode_watch_frame(event: EventType, object: Vec<u8>) -> Result<Vec<u8>, FrameError> {
    let msg = WatchEventMsg {
        type_: Some(event.as_str().to_owned()),
        object: Some(RawExtensionMsg { raw: Some(object) }),
    };
    let len = msg.encoded_len();
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge { len })?;
    let mut out = Vec::with_capacity(len.saturating_add(4));
    out.extend_from_slice(&prefix.to_be_bytes());
    msg.encode_raw(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests;

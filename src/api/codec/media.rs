//! Content negotiation for CSR bodies: which decoder a request body needs, and whether the
//! response must be protobuf (reference §6.6).
//!
//! # How the API calls it
//! - Request bodies of create, PUT, `/approval`, `/status`: [`BodyFormat::from_content_type`]
//!   on `Content-Type`; `Json` → serde, `Protobuf` → `protobuf::decode_csr`, `None` → 415.
//!   (PATCH bodies use `patch::PatchKind::from_content_type` instead.)
//! - Every response: [`ResponseFormat::negotiate`] on `Accept`; JSON whenever the client takes
//!   it (kubelets send `application/vnd.kubernetes.protobuf, application/json` and get JSON),
//!   protobuf only when it is the sole acceptable type, `None` → 406 `NotAcceptable`.

/// The protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The JSON media type.
pub const JSON: &str = "application/json";

/// Most entries read from an `Accept` header (client-go sends 2; browsers about 6).
pub const MAX_ACCEPT_ENTRIES: usize = 32;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
}

impl BodyFormat {
    /// Maps a `Content-Type` value (parameters ignored); `None` → 415. A missing header is
    /// the caller's choice (kubectl always sends one).
    pub fn from_content_type(value: &str) -> Option<BodyFormat> {
        match essence(value).as_str() {
            JSON => Some(BodyFormat::Json),
            PROTOBUF => Some(BodyFormat::Protobuf),
            _ => None,
        }
    }
}

/// How to encode a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// JSON (the default).
    Json,
    /// Protobuf: the client accepts nothing else.
    Protobuf,
}

impl ResponseFormat {
    /// Picks the response encoding for an `Accept` header (`None` header → JSON). JSON wins
    /// whenever acceptable (`application/json`, `application/*`, `*/*`, with any parameters
    /// such as `as=Table`, and q > 0); protobuf only if it alone is acceptable.
    pub fn negotiate(accept: Option<&str>) -> Option<ResponseFormat> {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Some(ResponseFormat::Json);
        };
        let mut protobuf = false;
        for entry in accept.split(',').take(MAX_ACCEPT_ENTRIES) {
            if refused(entry) {
                continue;
            }
            match essence(entry).as_str() {
                JSON | "application/*" | "*/*" => return Some(ResponseFormat::Json),
                PROTOBUF => protobuf = true,
                _ => {}
            }
        }
        protobuf.then_some(ResponseFormat::Protobuf)
    }
}

/// The media type without parameters, lower case.
fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether an `Accept` entry carries `q=0` (explicitly not acceptable).
fn refused(entry: &str) -> bool {
    entry.split(';').skip(1).any(|p| {
        let mut kv = p.splitn(2, '=');
        let key = kv.next().unwrap_or("").trim();
        let val = kv.next().unwrap_or("").trim();
        key.eq_ignore_ascii_case("q") && val.parse::<f32>().is_ok_and(|q| q <= 0.0)
    })
}

#[cfg(test)]
mod tests;

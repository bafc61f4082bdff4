//! Request decoding at the edge: query parameters, JSON bodies (bounded depth, apiVersion/kind
//! from the path when absent, unknown fields per `fieldValidation`).

use std::collections::BTreeMap;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde::Deserialize;
use serde_json::Value;

use crate::api::discovery::GROUP_VERSION;
use crate::api::error::{ApiError, bad_request};

/// Deepest JSON nesting accepted. A CSR object nests 5 levels (object → status → conditions →
/// condition → time); 32 leaves room for labels/annotations and refuses stack-eating input long
/// before serde_json's own recursion limit (128).
pub const MAX_JSON_DEPTH: usize = 32;

/// The CSR kind.
pub const KIND: &str = "CertificateSigningRequest";

/// Parsed query parameters (last value wins, as in Go's `url.Values.Get`... first, actually:
/// `Get` returns the first; we keep the first).
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Query(map)
    }

    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean as Go's `strconv.ParseBool` reads it; absent or empty = false.
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(_) => Err(bad_request(format!("invalid boolean value for {key}"))),
        }
    }

    /// A non-negative integer parameter.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                bad_request(format!(
                    "invalid value for {key}: must be a non-negative integer"
                ))
            }),
        }
    }
}

/// What to do with unknown fields (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// 400 on unknown fields.
    Strict,
    /// Accept, with a `Warning` header per field (the server default).
    Warn,
    /// Accept silently.
    Ignore,
}

impl FieldValidation {
    /// From the query.
    pub fn from_query(q: &Query) -> Result<FieldValidation, ApiError> {
        match q.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(_) => Err(bad_request(
                "fieldValidation must be one of Strict, Warn or Ignore",
            )),
        }
    }
}

/// A decoded body and the warnings to send.
#[derive(Debug)]
pub struct Decoded {
    /// The object.
    pub csr: CertificateSigningRequest,
    /// `Warning` header texts.
    pub warnings: Vec<String>,
}

pub(in crate::api) fn depth_ok(bytes: &[u8]) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Paths present (and non-null) in `input` but absent from `known`.
pub(in crate::api) fn unknown_fields(
    input: &Value,
    known: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    None if !v.is_null() => out.push(p),
                    Some(kv) => unknown_fields(v, kv, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k.iter()).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn check_type_field(
    obj: &mut serde_json::Map<String, Value>,
    key: &str,
    want: &str,
) -> Result<(), ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            obj.insert(key.to_owned(), Value::String(want.to_owned()));
            Ok(())
        }
        Some(Value::String(s)) if s == want => Ok(()),
        Some(Value::String(s)) if s.is_empty() => {
            obj.insert(key.to_owned(), Value::String(want.to_owned()));
            Ok(())
        }
        Some(_) => Err(bad_request(format!(
            "the body must be a {GROUP_VERSION} {KIND}: wrong {key}"
        ))),
    }
}

/// Decodes a CSR body.
pub fn decode_csr(bytes: &[u8], validation: FieldValidation) -> Result<Decoded, ApiError> {
    if !depth_ok(bytes) {
        return Err(bad_request(format!(
            "the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let mut value: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(obj) = &mut value else {
        return Err(bad_request("the body must be a JSON object"));
    };
    check_type_field(obj, "apiVersion", GROUP_VERSION)?;
    check_type_field(obj, "kind", KIND)?;
    // Deserialized from a borrow of the tree (no copy of it).
    let csr = CertificateSigningRequest::deserialize(&value)
        .map_err(|e| bad_request(format!("the body is not a valid {KIND}: {e}")))?;
    let mut unknown = Vec::new();
    if validation != FieldValidation::Ignore {
        let known = serde_json::to_value(&csr)
            .map_err(|e| ApiError::Internal(format!("re-encode: {e}")))?;
        unknown_fields(&value, &known, "", &mut unknown);
    }
    match validation {
        FieldValidation::Strict if !unknown.is_empty() => Err(bad_request(format!(
            "strict decoding error: unknown field \"{}\"",
            unknown.join("\", unknown field \"")
        ))),
        _ => Ok(Decoded {
            csr,
            warnings: unknown
                .into_iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests;

//! PATCH bodies for CSRs: JSON merge patch (RFC 7386), strategic merge patch (for the CSR
//! type), and JSON Patch (RFC 6902), applied to the stored object as a `serde_json::Value`.
//!
//! This module only computes the patched object; it decides nothing. Removing a condition or
//! changing the spec yields a result that shows it, and the API's PUT rules refuse it.
//!
//! # How the API calls it
//! For `PATCH .../certificatesigningrequests/{name}`, `.../{name}/approval` and
//! `.../{name}/status`:
//! 1. [`PatchKind::from_content_type`] on the `Content-Type` header; `None` → 415
//!    `UnsupportedMediaType` (this includes server-side apply, `application/apply-patch+yaml`).
//! 2. Serialize the stored CSR to a `serde_json::Value` (with `apiVersion` and `kind`), call
//!    [`apply`]`(&stored, kind, body)`.
//! 3. Deserialize the result into `CertificateSigningRequest` (failure → 422 `Invalid`) and run
//!    exactly the PUT rules and authorization of the same endpoint against the stored object.
//!    Note those rules *force back* what an endpoint may not change (reference §1.4: spec on
//!    every path, `status` on the main resource, `status.certificate` on `/approval`) rather
//!    than refusing it: kube-rs callers commonly send `Patch::Merge(&typed_csr)`, whose
//!    serialization carries `spec: {request: "", signerName: ""}` (see the test
//!    `kube_rs_typed_object_merge_patch_blanks_spec`). Only removing or changing a decided
//!    condition, or changing a set certificate, is refused.
//!
//! Error mapping: [`PatchError::TooLarge`] → 413; `Parse`, `NotAnObject`, `NotAnArray`,
//! `TooManyOperations`, `TooDeep`, `InvalidOperation`, `UnsupportedDirective`,
//! `MissingMergeKey` → 400 `BadRequest`; `OperationFailed` and `ResultTooLarge` → 422 `Invalid`.
//!
//! Strategic merge patch for this type: RFC 7386 merge everywhere except `status.conditions`,
//! which is a list keyed by `type` (k8s-openapi's `x-kubernetes-list-map-keys`): a patch entry
//! merges into the entry with the same `type` or is appended. `$patch: delete` on an entry
//! removes that entry, `$patch: replace` as an entry replaces the whole list with the other
//! entries, `$patch: merge` is the default; `$setElementOrder/conditions` is accepted and
//! ignored. Any other `$` directive is refused. Other lists (`usages`, `groups`) are atomic.
//!
//! Deviation, on purpose: upstream's Go struct for `conditions` carries
//! `+listType=map`/`+listMapKey=type` but no `patchStrategy:"merge"` tag, so kube-apiserver's
//! strategic merge replaces that list as a merge patch would. Merging by `type` (the list-map
//! semantics server-side apply uses) differs only when the stored list is non-empty, and then
//! only keeps more of the stored conditions; the PUT rules judge the result either way.

use json_patch::PatchOperation;
use serde_json::{Map, Value};

/// Largest patch body, in bytes: the largest object etcd stores by default
/// (`--max-request-bytes` 1.5 MiB); a CSR patch is normally under 10 KiB.
pub const MAX_PATCH_BYTES: usize = 1536 * 1024;

/// Largest patched object, in approximate JSON bytes (same origin as [`MAX_PATCH_BYTES`]).
pub const MAX_RESULT_BYTES: usize = 1536 * 1024;

/// Most JSON values in the patched object. A CSR has about 50; labels and annotations add
/// some. Bounds the work of the per-operation size check.
pub const MAX_RESULT_NODES: usize = 10_000;

/// Most operations in one JSON Patch. kube-apiserver allows 10,000 (`maxJSONPatchOperations`);
/// a CSR has fewer than 50 fields, so 1,000 is ample.
pub const MAX_JSON_PATCH_OPS: usize = 1000;

/// Deepest nesting in a patch or in the result. A CSR is 5 levels deep
/// (`status.conditions[i].message`); serde_json's own parser limit is 128.
pub const MAX_DEPTH: usize = 32;

/// The PATCH content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (Kubernetes, for the CSR type).
    Strategic,
    /// `application/json-patch+json` (RFC 6902).
    Json,
}

impl PatchKind {
    /// Maps a `Content-Type` header value (parameters such as `charset` ignored) to a kind;
    /// `None` for anything else (→ 415).
    pub fn from_content_type(value: &str) -> Option<PatchKind> {
        let essence = value.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/json-patch+json" => Some(PatchKind::Json),
            _ => None,
        }
    }
}

/// Why a patch was refused. Nothing is changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body exceeds [`MAX_PATCH_BYTES`] (→ 413).
    #[error("patch of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not JSON (→ 400).
    #[error("patch is not valid JSON: {0}")]
    Parse(serde_json::Error),
    /// A merge patch that is not a JSON object, or a stored document that is not one (→ 400).
    #[error("merge patch must be a JSON object")]
    NotAnObject,
    /// A JSON Patch that is not an array (→ 400).
    #[error("JSON patch must be an array of operations")]
    NotAnArray,
    /// More than [`MAX_JSON_PATCH_OPS`] operations (→ 400).
    #[error("JSON patch has {count} operations, the limit is {max}")]
    TooManyOperations {
        /// Operations sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The patch nests deeper than [`MAX_DEPTH`] (→ 400).
    #[error("patch nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A JSON Patch operation is malformed (unknown `op`, missing `path`, ...) (→ 400).
    #[error("invalid JSON patch operation: {0}")]
    InvalidOperation(serde_json::Error),
    /// A JSON Patch operation could not be applied (failed `test`, missing path) (→ 422).
    #[error("JSON patch operation {index} at {path:?} failed: {source}")]
    OperationFailed {
        /// Index of the failing operation.
        index: usize,
        /// The operation's `path` (as sent by the client).
        path: String,
        /// What went wrong.
        source: json_patch::PatchErrorKind,
    },
    /// A strategic-merge directive this type does not support (→ 400).
    #[error("unsupported strategic merge patch directive {directive:?}")]
    UnsupportedDirective {
        /// The `$` key or `$patch` value.
        directive: String,
    },
    /// A `status.conditions` entry without a string `type` (→ 400).
    #[error("status.conditions entry without a \"type\" in strategic merge patch")]
    MissingMergeKey,
    /// The patched object exceeds [`MAX_RESULT_BYTES`], [`MAX_RESULT_NODES`] or [`MAX_DEPTH`]
    /// (→ 422).
    #[error("patched object exceeds the size limits")]
    ResultTooLarge,
}

/// Applies `body` (a patch of `kind`) to `doc` and returns the patched document. `doc` is not
/// modified; on error nothing is returned.
pub fn apply(doc: &Value, kind: PatchKind, body: &[u8]) -> Result<Value, PatchError> {
    if body.len() > MAX_PATCH_BYTES {
        return Err(PatchError::TooLarge {
            len: body.len(),
            max: MAX_PATCH_BYTES,
        });
    }
    let patch: Value = serde_json::from_slice(body).map_err(PatchError::Parse)?;
    if depth_exceeds(&patch, MAX_DEPTH) {
        return Err(PatchError::TooDeep { max: MAX_DEPTH });
    }
    let result = match kind {
        PatchKind::Merge => merge(doc, &patch)?,
        PatchKind::Strategic => strategic(doc, &patch)?,
        PatchKind::Json => json_patch(doc, patch)?,
    };
    check_result(&result)?;
    Ok(result)
}

/// RFC 7386 merge patch; the patch must be an object (a Kubernetes object cannot be replaced
/// by a scalar).
fn merge(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() || !doc.is_object() {
        return Err(PatchError::NotAnObject);
    }
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}

/// RFC 6902 JSON Patch, one operation at a time on a copy, checking the size after each (a
/// `copy` of the root doubles the document).
fn json_patch(doc: &Value, patch: Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::NotAnArray);
    };
    if ops.len() > MAX_JSON_PATCH_OPS {
        return Err(PatchError::TooManyOperations {
            count: ops.len(),
            max: MAX_JSON_PATCH_OPS,
        });
    }
    let ops: Vec<PatchOperation> = ops
        .into_iter()
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(PatchError::InvalidOperation)?;
    let mut out = doc.clone();
    for (index, op) in ops.iter().enumerate() {
        json_patch::patch_unsafe(&mut out, std::slice::from_ref(op)).map_err(|e| {
            PatchError::OperationFailed {
                index,
                path: e.path.to_string(),
                source: e.kind,
            }
        })?;
        check_result(&out)?;
    }
    Ok(out)
}

/// Strategic merge patch for the CSR type (see the module docs).
fn strategic(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let (Value::Object(doc_map), Value::Object(patch_map)) = (doc, patch) else {
        return Err(PatchError::NotAnObject);
    };
    let mut out = doc_map.clone();
    for (key, value) in patch_map {
        reject_directive_key(key)?;
        if key == "status" {
            let status = out.remove("status").unwrap_or(Value::Null);
            match strategic_status(status, value)? {
                Some(merged) => out.insert(key.clone(), merged),
                None => None,
            };
        } else {
            reject_directives(value)?;
            merge_key(&mut out, key, value);
        }
    }
    Ok(Value::Object(out))
}

/// RFC 7386 for one key of an object.
fn merge_key(out: &mut Map<String, Value>, key: &str, value: &Value) {
    if value.is_null() {
        out.remove(key);
    } else {
        let slot = out.entry(key.to_owned()).or_insert(Value::Null);
        json_patch::merge(slot, value);
    }
}

/// Merges the `status` patch; `None` when the patch deletes `status`.
fn strategic_status(status: Value, patch: &Value) -> Result<Option<Value>, PatchError> {
    let Value::Object(patch_map) = patch else {
        reject_directives(patch)?;
        let mut slot = status;
        json_patch::merge(&mut slot, patch);
        return Ok((!slot.is_null()).then_some(slot));
    };
    let mut out = match status {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (key, value) in patch_map {
        match key.as_str() {
            "conditions" => {
                let current = out.remove("conditions");
                if let Some(merged) = merge_conditions(current, value)? {
                    out.insert(key.clone(), merged);
                }
            }
            "$setElementOrder/conditions" => {}
            _ => {
                reject_directive_key(key)?;
                reject_directives(value)?;
                merge_key(&mut out, key, value);
            }
        }
    }
    Ok(Some(Value::Object(out)))
}

/// Merges a `status.conditions` patch list into the current list, keyed by `type`.
fn merge_conditions(current: Option<Value>, patch: &Value) -> Result<Option<Value>, PatchError> {
    let Value::Array(entries) = patch else {
        reject_directives(patch)?;
        return Ok((!patch.is_null()).then(|| patch.clone()));
    };
    let mut list = match current {
        Some(Value::Array(items)) if !replaces_list(entries) => items,
        _ => Vec::new(),
    };
    for entry in entries {
        let Value::Object(fields) = entry else {
            return Err(PatchError::MissingMergeKey);
        };
        let directive = fields.get("$patch").map(directive_name).transpose()?;
        if directive.as_deref() == Some("replace") {
            continue;
        }
        let ty = fields
            .get("type")
            .and_then(Value::as_str)
            .ok_or(PatchError::MissingMergeKey)?;
        let at = list
            .iter()
            .position(|c| c.get("type").and_then(Value::as_str) == Some(ty));
        let mut body = fields.clone();
        body.remove("$patch");
        let body = Value::Object(body);
        reject_directives(&body)?;
        match (directive.as_deref(), at) {
            (Some("delete"), Some(i)) => {
                list.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => {
                if let Some(slot) = list.get_mut(i) {
                    json_patch::merge(slot, &body);
                }
            }
            (_, None) => {
                let mut fresh = Value::Null;
                json_patch::merge(&mut fresh, &body);
                list.push(fresh);
            }
        }
    }
    Ok(Some(Value::Array(list)))
}

/// Whether a patch list carries a `{"$patch": "replace"}` entry.
fn replaces_list(entries: &[Value]) -> bool {
    entries
        .iter()
        .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"))
}

/// The value of a `$patch` key: `merge`, `delete` or `replace`.
fn directive_name(v: &Value) -> Result<String, PatchError> {
    match v.as_str() {
        Some(s @ ("merge" | "delete" | "replace")) => Ok(s.to_owned()),
        _ => Err(PatchError::UnsupportedDirective {
            directive: format!("$patch: {v}"),
        }),
    }
}

/// Refuses a `$`-prefixed key (a strategic-merge directive this type does not support).
fn reject_directive_key(key: &str) -> Result<(), PatchError> {
    if key.starts_with('$') {
        return Err(PatchError::UnsupportedDirective {
            directive: key.to_owned(),
        });
    }
    Ok(())
}

/// Refuses any `$`-prefixed key (strategic-merge directive) inside `v`.
fn reject_directives(v: &Value) -> Result<(), PatchError> {
    match v {
        Value::Object(m) => {
            if let Some(key) = m.keys().find(|k| k.starts_with('$')) {
                return Err(PatchError::UnsupportedDirective {
                    directive: key.clone(),
                });
            }
            m.values().try_for_each(reject_directives)
        }
        Value::Array(items) => items.iter().try_for_each(reject_directives),
        _ => Ok(()),
    }
}

/// Whether `v` nests deeper than `max` levels.
fn depth_exceeds(v: &Value, max: usize) -> bool {
    let Some(below) = max.checked_sub(1) else {
        return matches!(v, Value::Array(_) | Value::Object(_));
    };
    match v {
        Value::Array(items) => items.iter().any(|i| depth_exceeds(i, below)),
        Value::Object(m) => m.values().any(|i| depth_exceeds(i, below)),
        _ => false,
    }
}

/// Refuses a result over [`MAX_RESULT_BYTES`], [`MAX_RESULT_NODES`] or [`MAX_DEPTH`].
fn check_result(v: &Value) -> Result<(), PatchError> {
    let mut budget = Budget {
        nodes: MAX_RESULT_NODES,
        bytes: MAX_RESULT_BYTES,
    };
    if depth_exceeds(v, MAX_DEPTH) || !budget.take(v) {
        return Err(PatchError::ResultTooLarge);
    }
    Ok(())
}

/// Remaining allowance while measuring a document; stops at the first overrun.
struct Budget {
    nodes: usize,
    bytes: usize,
}

impl Budget {
    /// Charges `v` and everything under it; `false` once the allowance is spent.
    fn take(&mut self, v: &Value) -> bool {
        let own = match v {
            Value::String(s) => s.len() + 2,
            _ => 8,
        };
        let (Some(nodes), Some(bytes)) = (self.nodes.checked_sub(1), self.bytes.checked_sub(own))
        else {
            return false;
        };
        self.nodes = nodes;
        self.bytes = bytes;
        match v {
            Value::Array(items) => items.iter().all(|i| self.take(i)),
            Value::Object(m) => m.iter().all(|(k, i)| {
                self.bytes = self.bytes.saturating_sub(k.len() + 3);
                self.bytes > 0 && self.take(i)
            }),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests;

//! The Lease resource's documents and rules: discovery, validation (as kube-apiserver's
//! `ValidateLease`, plus bounds) and kubectl's Table (Name, Holder, Age).

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Value, json};

use super::lease::{GROUP, RESOURCE, lease_invalid};
use crate::api::codec::request::{FieldValidation, MAX_JSON_DEPTH, depth_ok, unknown_fields};
use crate::api::error::{ApiError, bad_request};

const GROUP_VERSION: &str = "coordination.k8s.io/v1";
/// Longest name (DNS-1123 subdomain) and namespace (DNS-1123 label), as kube-apiserver.
pub(super) const MAX_NAME: usize = 253;
pub(super) const MAX_NAMESPACE: usize = 63;
/// Longest `spec.holderIdentity` kept (upstream does not bound it; identities are host names
/// plus a suffix).
pub(super) const MAX_HOLDER: usize = 1024;

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

/// A DNS-1123 subdomain (`max` 253) or label (`max` 63, no dots).
pub(super) fn dns_name(s: &str, max: usize, dots: bool) -> bool {
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
pub(super) fn validate(lease: &Lease, name: &str) -> Result<(), ApiError> {
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

/// A `meta.k8s.io/v1` Table of leases (kubectl's columns: Name, Holder, Age).
pub(super) fn table(items: &[Lease], rv: u64) -> Value {
    let now = crate::api::csr::now_unix();
    let col = |name: &str, format: &str, d: &str| json!({"name": name, "type": "string", "format": format, "description": d, "priority": 0});
    let rows: Vec<Value> = items
        .iter()
        .map(|l| {
            let age = l
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| crate::api::csr::table::human_duration(now - t.0.as_second()))
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

/// Decodes a Lease body (JSON, bounded depth, apiVersion/kind checked when present, unknown
/// fields per `fieldValidation`: 400 when Strict, `Warning`s when Warn).
pub(super) fn decode(bytes: &[u8], fv: FieldValidation) -> Result<(Lease, Vec<String>), ApiError> {
    if !depth_ok(bytes) {
        return Err(bad_request(format!(
            "the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad_request(format!("the body is not valid JSON: {e}")))?;
    for (key, want) in [("apiVersion", GROUP_VERSION), ("kind", "Lease")] {
        match value.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() || s == want => {}
            Some(_) => {
                return Err(bad_request(format!(
                    "the body must be a {GROUP_VERSION} Lease: wrong {key}"
                )));
            }
        }
    }
    let mut clean = value.clone();
    if let Some(o) = clean.as_object_mut() {
        o.insert("apiVersion".to_owned(), json!(GROUP_VERSION));
        o.insert("kind".to_owned(), json!("Lease"));
    }
    let lease: Lease = serde_json::from_value(clean)
        .map_err(|e| bad_request(format!("the body is not a valid Lease: {e}")))?;
    let mut unknown = Vec::new();
    if fv != FieldValidation::Ignore {
        let known = serde_json::to_value(&lease)
            .map_err(|e| ApiError::Internal(format!("re-encode: {e}")))?;
        unknown_fields(&value, &known, "", &mut unknown);
    }
    if fv == FieldValidation::Strict && !unknown.is_empty() {
        return Err(bad_request(format!(
            "strict decoding error: unknown field \"{}\"",
            unknown.join("\", unknown field \"")
        )));
    }
    let warnings = unknown
        .into_iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    Ok((lease, warnings))
}

#[cfg(test)]
mod tests;

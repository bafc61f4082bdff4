//! `meta.k8s.io/v1` Table output with kubectl's CSR columns (reference §6.2).

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::{Value, json};

use crate::conditions::{ConditionType, has_condition};

/// Whether the Accept header asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').next().is_some_and(|first| {
            let params: Vec<&str> = first.split(';').map(str::trim).collect();
            params.contains(&"as=Table")
                && params.contains(&"g=meta.k8s.io")
                && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
        })
    })
}

/// Human duration as kubectl's `duration.HumanDuration` prints it.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".to_owned();
    }
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    let (d, y) = (h / 24, h / (24 * 365));
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if y < 8 {
        let rd = d % 365;
        if rd == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{rd}d")
        }
    } else {
        format!("{y}y")
    }
}

/// kubectl's Condition column.
pub fn condition_column(csr: &CertificateSigningRequest) -> String {
    let mut s = if has_condition(csr, ConditionType::Denied) {
        ConditionType::Denied.as_str().to_owned()
    } else if has_condition(csr, ConditionType::Approved) {
        ConditionType::Approved.as_str().to_owned()
    } else {
        "Pending".to_owned()
    };
    if has_condition(csr, ConditionType::Failed) {
        s.push(',');
        s.push_str(ConditionType::Failed.as_str());
    }
    if csr
        .status
        .as_ref()
        .and_then(|st| st.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
    {
        s.push_str(",Issued");
    }
    s
}

fn row(csr: &CertificateSigningRequest, now_unix: i64) -> Value {
    let age = csr
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| human_duration(now_unix - t.0.as_second()))
        .unwrap_or_else(|| "<unknown>".to_owned());
    let signer = if csr.spec.signer_name.is_empty() {
        "<none>".to_owned()
    } else {
        csr.spec.signer_name.clone()
    };
    let duration = csr
        .spec
        .expiration_seconds
        .map(|s| human_duration(i64::from(s)))
        .unwrap_or_else(|| "<none>".to_owned());
    let mut meta = serde_json::to_value(&csr.metadata).unwrap_or(Value::Null);
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
    }
    json!({
        "cells": [csr.metadata.name.clone().unwrap_or_default(), age, signer,
                  csr.spec.username.clone().unwrap_or_default(), duration, condition_column(csr)],
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
    })
}

/// A Table of `items`.
pub fn table(
    items: &[&CertificateSigningRequest],
    resource_version: u64,
    cont: Option<&str>,
    now_unix: i64,
) -> Value {
    let col = |name: &str, format: &str, d: &str| json!({"name": name, "type": "string", "format": format, "description": d, "priority": 0});
    let mut meta = json!({"resourceVersion": resource_version.to_string()});
    if let (Some(c), Some(m)) = (cont, meta.as_object_mut()) {
        m.insert("continue".to_owned(), json!(c));
    }
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
        "columnDefinitions": [
            col("Name", "name", "Name must be unique within a namespace."),
            col("Age", "", "CreationTimestamp is a timestamp representing the server time when this object was created."),
            col("SignerName", "", "Only one signer name may be set."),
            col("Requestor", "", "Name of the user who created the CertificateSigningRequest."),
            col("RequestedDuration", "", "The requested validity duration of the issued certificate."),
            col("Condition", "", "Approved, Denied, Pending, Failed, Issued."),
        ],
        "rows": items.iter().map(|c| row(c, now_unix)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests;

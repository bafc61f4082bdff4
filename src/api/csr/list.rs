//! List with label and field selectors, limit/continue, and the caller's visibility filter.

use std::collections::BTreeMap;

use base64::Engine;
use http::{Request, Response, StatusCode, header};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::json;

use super::table;
use crate::api::body::ResponseBody;
use crate::api::codec::request::Query;
use crate::api::error::{ApiError, bad_request};
use crate::api::hooks::{Caller, Verb};
use crate::api::{Api, MAX_LIST_LIMIT, blocking, json_response};
use crate::store::{ListQuery, Row};

/// Longest selector accepted (bounded parsing work); kubectl's are tens of bytes.
const MAX_SELECTOR_LEN: usize = 4096;

/// One requirement of a label or field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
}

/// Parsed `labelSelector` + `fieldSelector`.
#[derive(Debug, Default, Clone)]
pub(in crate::api) struct Selectors {
    labels: Vec<Req>,
    fields: Vec<Req>,
}

fn parse_selector(s: &str, fields: bool) -> Result<Vec<Req>, ApiError> {
    if s.len() > MAX_SELECTOR_LEN {
        return Err(bad_request("selector too long"));
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let req = if let Some((k, v)) = part.split_once("!=") {
            Req::Ne(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Req::Eq(k.trim().to_owned(), v.trim().to_owned())
        } else if fields {
            return Err(bad_request(format!("invalid field selector: {part}")));
        } else if let Some(k) = part.strip_prefix('!') {
            Req::NotExists(k.trim().to_owned())
        } else if part.contains(' ') || part.contains('(') {
            return Err(bad_request(
                "set-based label selectors (in, notin) are not supported",
            ));
        } else {
            Req::Exists(part.to_owned())
        };
        if fields {
            let key = match &req {
                Req::Eq(k, _) | Req::Ne(k, _) => k.as_str(),
                _ => "",
            };
            if key != "metadata.name" && key != "spec.signerName" {
                return Err(bad_request(format!(
                    "field label not supported: {key} (use metadata.name or spec.signerName)"
                )));
            }
        }
        out.push(req);
    }
    Ok(out)
}

fn matches(reqs: &[Req], get: impl Fn(&str) -> Option<String>) -> bool {
    reqs.iter().all(|r| match r {
        Req::Eq(k, v) => get(k).as_deref() == Some(v.as_str()),
        Req::Ne(k, v) => get(k).as_deref() != Some(v.as_str()),
        Req::Exists(k) => get(k).is_some(),
        Req::NotExists(k) => get(k).is_none(),
    })
}

impl Selectors {
    /// From the query.
    pub(in crate::api) fn from_query(q: &Query) -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: parse_selector(q.get("labelSelector").unwrap_or(""), false)?,
            fields: parse_selector(q.get("fieldSelector").unwrap_or(""), true)?,
        })
    }

    /// The name an equality field selector pins (`metadata.name=X`), if any: the kubelet's
    /// list-then-watch of its own CSR reads one row instead of the table.
    pub(in crate::api) fn pinned_name(&self) -> Option<&str> {
        self.fields.iter().find_map(|r| match r {
            Req::Eq(k, v) if k == "metadata.name" => Some(v.as_str()),
            _ => None,
        })
    }

    /// The signer an equality field selector pins (`spec.signerName=X`), if any.
    fn pinned_signer(&self) -> Option<&str> {
        self.fields.iter().find_map(|r| match r {
            Req::Eq(k, v) if k == "spec.signerName" => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether a stored row matches; the object is decoded (its labels only) just when a
    /// label selector is given.
    fn matches_row(&self, row: &Row) -> bool {
        let fields = matches(&self.fields, |k| match k {
            "metadata.name" => Some(row.name.clone()),
            "spec.signerName" => Some(row.signer_name.clone()),
            _ => None,
        });
        if !fields || self.labels.is_empty() {
            return fields;
        }
        let labels = serde_json::from_str::<LabelsOnly>(&row.json)
            .map(|o| o.metadata.labels)
            .unwrap_or_default();
        matches(&self.labels, |k| labels.get(k).cloned())
    }

    /// Whether an object matches.
    pub(in crate::api) fn matches(&self, csr: &CertificateSigningRequest) -> bool {
        let empty = BTreeMap::new();
        let labels = csr.metadata.labels.as_ref().unwrap_or(&empty);
        matches(&self.labels, |k| labels.get(k).cloned())
            && matches(&self.fields, |k| match k {
                "metadata.name" => csr.metadata.name.clone(),
                "spec.signerName" => Some(csr.spec.signer_name.clone()),
                _ => None,
            })
    }
}

/// The part of a stored object a label selector reads.
#[derive(serde::Deserialize)]
struct LabelsOnly {
    metadata: LabelsMeta,
}

#[derive(serde::Deserialize)]
struct LabelsMeta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// The list body from the stored JSON of its items (no decode and re-encode).
fn list_json(rows: &[Row], rv: u64, cont: Option<&str>) -> String {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let (Some(c), Some(m)) = (cont, meta.as_object_mut()) {
        m.insert("continue".to_owned(), json!(c));
    }
    let size: usize = rows.iter().map(|r| r.json.len() + 1).sum();
    let mut s = String::with_capacity(size + 200);
    s.push_str(r#"{"kind":"CertificateSigningRequestList","apiVersion":"certificates.k8s.io/v1","metadata":"#);
    s.push_str(&meta.to_string());
    s.push_str(r#","items":["#);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&r.json);
    }
    s.push_str("]}");
    s
}

fn encode_continue(rv: u64, last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{rv}:{last}"))
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad_request("invalid continue token"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad_request("invalid continue token"))?;
    let (rv, last) = text
        .split_once(':')
        .ok_or_else(|| bad_request("invalid continue token"))?;
    rv.parse::<u64>()
        .map_err(|_| bad_request("invalid continue token"))?;
    Ok(last.to_owned())
}

impl Api {
    /// Whether the caller may see this CSR (lists and watches are filtered to these), from
    /// the request's subject CN as indexed at create (the store's column): reads never parse
    /// the request.
    pub(in crate::api) fn visible_with_cn(
        &self,
        caller: &Caller,
        csr: &CertificateSigningRequest,
        cn: Option<&str>,
    ) -> bool {
        crate::authz::reads_all(caller, &self.inner.authz)
            || crate::authz::owns(caller, &super::facts_of(csr, cn))
    }

    pub(in crate::api) async fn list<B>(
        &self,
        caller: &Caller,
        q: &Query,
        req: &Request<B>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        self.authorize(caller, Verb::List, None)?;
        let sel = Selectors::from_query(q)?;
        let limit = q.u64("limit")?.map(|l| {
            usize::try_from(l)
                .unwrap_or(MAX_LIST_LIMIT)
                .min(MAX_LIST_LIMIT)
        });
        let after = q
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(decode_continue)
            .transpose()?;
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let as_table = table::wants_table(accept);
        // Lists are served as JSON only; a client that accepts nothing else gets 406.
        if !as_table
            && crate::api::codec::media::ResponseFormat::negotiate(accept)
                != Some(crate::api::codec::media::ResponseFormat::Json)
        {
            return Err(ApiError::NotAcceptable);
        }
        let (api, who) = (self.clone(), caller.clone());
        let limit = limit.filter(|l| *l > 0);
        let (mut rows, rv) = blocking(move || {
            let q = ListQuery {
                name: sel.pinned_name(),
                signer_name: sel.pinned_signer(),
                after: after.as_deref(),
                // One more than the page: whether a continue token is needed.
                max_rows: limit.map(|l| l.saturating_add(1)),
            };
            let admin = crate::authz::reads_all(&who, &api.inner.authz);
            api.inner.store.scan(&q, &mut |row| {
                sel.matches_row(row) && (admin || api.owns_row(&who, row))
            })
        })
        .await??;
        let mut cont = None;
        if let Some(l) = limit
            && rows.len() > l
        {
            rows.truncate(l);
            cont = rows.last().map(|r| encode_continue(rv, &r.name));
        }
        if as_table {
            let items = rows
                .iter()
                .map(|r| {
                    serde_json::from_str::<CertificateSigningRequest>(&r.json)
                        .map_err(|e| ApiError::Internal(format!("stored object {}: {e}", r.name)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&CertificateSigningRequest> = items.iter().collect();
            return Ok(json_response(
                StatusCode::OK,
                &table::table(&refs, rv, cont.as_deref(), super::now_unix()),
                &[],
            ));
        }
        let body = list_json(&rows, rv, cont.as_deref());
        Ok(crate::api::json_bytes_response(
            StatusCode::OK,
            bytes::Bytes::from(body),
            &[],
        ))
    }

    /// Whether the caller owns a stored row (its requester, or a node its own CN).
    fn owns_row(&self, caller: &Caller, row: &Row) -> bool {
        crate::authz::owns(
            caller,
            &crate::api::hooks::CsrFacts {
                requester_username: &row.requester,
                subject_cn: row.subject_cn.as_deref(),
                signer_name: &row.signer_name,
            },
        )
    }
}

#[cfg(test)]
mod tests;

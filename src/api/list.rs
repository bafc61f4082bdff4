//! List with label and field selectors, limit/continue, and the caller's visibility filter.

use std::collections::BTreeMap;

use base64::Engine;
use http::{Request, Response, StatusCode, header};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::json;

use super::body::ResponseBody;
use super::decode::Query;
use super::error::{ApiError, bad_request};
use super::hooks::{Caller, Verb};
use super::{Api, MAX_LIST_LIMIT, blocking, json_response, table};

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
pub(super) struct Selectors {
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
    pub(super) fn from_query(q: &Query) -> Result<Selectors, ApiError> {
        Ok(Selectors {
            labels: parse_selector(q.get("labelSelector").unwrap_or(""), false)?,
            fields: parse_selector(q.get("fieldSelector").unwrap_or(""), true)?,
        })
    }

    /// The name an equality field selector pins (`metadata.name=X`), if any: the kubelet's
    /// list-then-watch of its own CSR reads one row instead of the table.
    pub(super) fn pinned_name(&self) -> Option<&str> {
        self.fields.iter().find_map(|r| match r {
            Req::Eq(k, v) if k == "metadata.name" => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether an object matches.
    pub(super) fn matches(&self, csr: &CertificateSigningRequest) -> bool {
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
    /// Whether the caller may see this CSR (lists and watches are filtered to these).
    pub(super) fn visible(&self, caller: &Caller, csr: &CertificateSigningRequest) -> bool {
        let cn = super::csr::cn_of(csr);
        let facts = super::csr::facts_of(csr, cn.as_deref());
        crate::authz::reads_all(caller, &self.inner.authz) || crate::authz::owns(caller, &facts)
    }

    pub(super) async fn list<B>(
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
        let store = self.inner.store.clone();
        let pinned = sel.pinned_name().map(str::to_owned);
        let (all, rv) = blocking(move || match pinned {
            Some(name) => store
                .get_with_rv(&name)
                .map(|(c, rv)| (c.into_iter().collect(), rv)),
            None => store.list(),
        })
        .await??;
        let mut items: Vec<&CertificateSigningRequest> = all
            .iter()
            .filter(|c| {
                after
                    .as_deref()
                    .is_none_or(|a| c.metadata.name.as_deref().unwrap_or("") > a)
            })
            .filter(|c| sel.matches(c) && self.visible(caller, c))
            .collect();
        let mut cont = None;
        if let Some(l) = limit.filter(|l| *l > 0)
            && items.len() > l
        {
            items.truncate(l);
            cont = items
                .last()
                .map(|c| encode_continue(rv, c.metadata.name.as_deref().unwrap_or("")));
        }
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        if table::wants_table(accept) {
            return Ok(json_response(
                StatusCode::OK,
                &table::table(&items, rv, cont.as_deref(), super::csr::now_unix()),
                &[],
            ));
        }
        // Lists are served as JSON only; a client that accepts nothing else gets 406.
        if crate::compat::media::ResponseFormat::negotiate(accept)
            != Some(crate::compat::media::ResponseFormat::Json)
        {
            return Err(ApiError::NotAcceptable);
        }
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if let (Some(c), Some(m)) = (cont, meta.as_object_mut()) {
            m.insert("continue".to_owned(), json!(c));
        }
        let body = json!({"kind": "CertificateSigningRequestList", "apiVersion": "certificates.k8s.io/v1",
                          "metadata": meta, "items": items});
        Ok(json_response(StatusCode::OK, &body, &[]))
    }
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;

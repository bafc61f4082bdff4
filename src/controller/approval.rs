//! Approval inputs in controller mode: the requester comes from the CSR spec (the apiserver
//! wrote it), node facts from the local store (and certificates seen in the cluster), and a
//! bootstrap token's node-name binding from `[controller.bootstrap_token_nodes]` — never from
//! Secrets, never from Node objects.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use globset::{Glob, GlobSet, GlobSetBuilder};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::config::{ControllerConfigError, NodePatterns};
use crate::issue::{SignerName, SubjectIdentity, ValidatedCsr};
use crate::policy::{self, Approver, Decision, NodeFacts};
use crate::store::{IssuedRecord, Store, StoreError};

/// The username prefix of bootstrap-token requesters (`system:bootstrap:<id>`).
const BOOTSTRAP_USER_PREFIX: &str = "system:bootstrap:";

/// Bootstrap token id → compiled node-name patterns.
#[derive(Debug, Clone, Default)]
pub struct TokenBindings(BTreeMap<String, GlobSet>);

impl TokenBindings {
    /// Compiles `[controller.bootstrap_token_nodes]`.
    pub fn new(
        cfg: &BTreeMap<String, NodePatterns>,
    ) -> Result<TokenBindings, ControllerConfigError> {
        let mut out = BTreeMap::new();
        for (id, pats) in cfg {
            let bad = |e: globset::Error| ControllerConfigError::TokenBinding {
                id: id.clone(),
                why: e.to_string(),
            };
            let mut b = GlobSetBuilder::new();
            for p in pats.as_slice() {
                b.add(Glob::new(p).map_err(bad)?);
            }
            out.insert(id.clone(), b.build().map_err(bad)?);
        }
        Ok(TokenBindings(out))
    }

    /// The patterns bound to the requester's token, when the requester is a listed token.
    pub fn for_username(&self, username: &str) -> Option<GlobSet> {
        let id = username.strip_prefix(BOOTSTRAP_USER_PREFIX)?;
        self.0.get(id).cloned()
    }
}

/// A policy rule name as a condition reason: `node_disabled` → `NodeDisabled`.
pub fn reason_of(rule: &str) -> String {
    rule.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect()
}

/// Seconds since the epoch.
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The node a validated CSR names, if any.
pub fn node_of(v: &ValidatedCsr) -> Option<&str> {
    match &v.identity {
        SubjectIdentity::Node(n) => Some(n.as_str()),
        SubjectIdentity::Client { .. } => None,
    }
}

/// Runs the approval policy on a validated CSR. Blocking (reads the local store).
pub fn decide(
    approver: &Approver,
    store: &Store,
    bindings: &TokenBindings,
    v: &ValidatedCsr,
    now: SystemTime,
) -> Result<Decision, StoreError> {
    let node = match node_of(v) {
        Some(n) => store.node_state(n, unix(now))?,
        None => crate::store::NodeState::default(),
    };
    let facts = NodeFacts {
        state: if node.disabled {
            policy::NodeState::Disabled
        } else {
            policy::NodeState::Enabled
        },
        latest_client_cert_not_after: node.latest_not_after_unix.map(from_unix),
        token_node_patterns: bindings.for_username(&v.requester.username),
        // Trust on first use needs the bootstrap request's peer address, which a CSR object in
        // a real cluster does not carry: never used in controller mode.
        first_bootstrap_address: None,
    };
    Ok(approver.decide(v, &v.requester, &facts, now))
}

/// The issued-certificate record of a kubelet client certificate in `csr`'s status (for the
/// "no live certificate for this node" rule), if it has one that parses.
pub fn issued_record(v: &ValidatedCsr, csr: &CertificateSigningRequest) -> Option<IssuedRecord> {
    if v.signer != SignerName::KubeletClient {
        return None;
    }
    let node = node_of(v)?;
    let pem = csr.status.as_ref()?.certificate.as_ref()?;
    let text = std::str::from_utf8(&pem.0).ok()?;
    let leaf = crate::bootstrap::certdir::parse_chain(text)
        .into_iter()
        .next()?;
    let tbs = leaf.tbs_certificate();
    let not_after = tbs.validity().not_after.to_unix_duration().as_secs();
    Some(IssuedRecord {
        node_name: node.to_owned(),
        serial_hex: hex::encode(tbs.serial_number().as_bytes()),
        not_after_unix: i64::try_from(not_after).unwrap_or(i64::MAX),
        issued_unix: unix(SystemTime::now()),
    })
}

#[cfg(test)]
#[path = "approval_tests.rs"]
mod tests;

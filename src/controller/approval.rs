//! Approval inputs in controller mode: the requester comes from the CSR spec (the apiserver
//! wrote it), node facts from the local store (and certificates seen in the cluster), and a
//! bootstrap token's node-name binding from `[controller.bootstrap_token_nodes]` — never from
//! Secrets, never from Node objects.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::config::ControllerConfigError;
use crate::clock::unix_now;
use crate::config::NodePatterns;
use crate::core::{Core, Decision, node_facts};
use crate::issue::{SignerName, SubjectIdentity, ValidatedCsr};
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

/// The node a validated CSR names, if any.
pub fn node_of(v: &ValidatedCsr) -> Option<&str> {
    match &v.identity {
        SubjectIdentity::Node(n) => Some(n.as_str()),
        SubjectIdentity::Client { .. } => None,
    }
}

/// Decides a validated CSR with the core: node facts from the local store, the token binding
/// from `[controller.bootstrap_token_nodes]`. Blocking (reads the local store).
pub fn decide(
    core: &Core,
    store: &Store,
    bindings: &TokenBindings,
    v: &ValidatedCsr,
    csr_name: &str,
) -> Result<Decision, StoreError> {
    let node = match node_of(v) {
        Some(n) => store.node_state(n, unix_now())?,
        None => crate::store::NodeState::default(),
    };
    // Trust on first use needs the bootstrap request's peer address, which a CSR object in a
    // real cluster does not carry: never used in controller mode.
    let facts = node_facts(&node, bindings.for_username(&v.requester.username), false);
    Ok(core.decide(v, &facts, csr_name))
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
    let leaf = crate::node_client::certdir::parse_chain(text)
        .into_iter()
        .next()?;
    let tbs = leaf.tbs_certificate();
    let not_after = tbs.validity().not_after.to_unix_duration().as_secs();
    Some(IssuedRecord {
        node_name: node.to_owned(),
        serial_hex: hex::encode(tbs.serial_number().as_bytes()),
        not_after_unix: i64::try_from(not_after).unwrap_or(i64::MAX),
        issued_unix: unix_now(),
    })
}

#[cfg(test)]
mod tests;

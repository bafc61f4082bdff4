//! The approver: runs the validators in fixed phases and turns the result into a [`Decision`].

use std::time::SystemTime;

use super::facts::{AUTO_APPROVED, Decision, NodeFacts, POLICY_DENIED, Verdict};
use super::groups::{GroupMatcher, GroupPatternError};
use super::inventory::NodeInventory;
use super::validators::{
    Ctx, Path, no_live_client_certificate, node_not_disabled, route, sans_in_inventory,
    token_node_binding,
};
use crate::config::{AuthConfig, IssuanceConfig};
use crate::issue::{Requester, ValidatedCsr};

/// Phase 1: explicit deny rules, checked first so a disabled node's CSRs are denied whatever
/// path they would take.
const DENY_RULES: [fn(&Ctx<'_>) -> Verdict; 2] = [node_not_disabled, token_node_binding];

/// Decides auto-approval.
#[derive(Debug, Clone)]
pub struct Approver {
    auto_approve: GroupMatcher,
    bootstrap: GroupMatcher,
    inventory: Option<NodeInventory>,
}

impl Approver {
    /// Builds the approver from `[auth]` (bootstrap groups), `[issuance]` (auto-approve
    /// groups) and the loaded node inventory.
    pub fn new(
        auth: &AuthConfig,
        cfg: &IssuanceConfig,
        inventory: Option<NodeInventory>,
    ) -> Result<Approver, GroupPatternError> {
        Ok(Approver {
            auto_approve: GroupMatcher::new(&cfg.auto_approve_groups)?,
            bootstrap: GroupMatcher::new(&auth.bootstrap_groups)?,
            inventory,
        })
    }

    /// True if the requester is in a bootstrap group (may create kubelet client CSRs).
    pub fn is_bootstrap_requester(&self, requester: &Requester) -> bool {
        self.bootstrap.first_match(&requester.groups).is_some()
    }

    /// Decides a validated CSR: deny rules, then route, then the path's hold rules.
    pub fn decide(
        &self,
        csr: &ValidatedCsr,
        requester: &Requester,
        facts: &NodeFacts,
        now: SystemTime,
    ) -> Decision {
        let ctx = Ctx {
            csr,
            requester,
            facts,
            now,
        };
        for rule in DENY_RULES {
            if let Some(d) = terminal(rule(&ctx)) {
                return d;
            }
        }
        let path = match route(&ctx, &self.auto_approve) {
            Ok(p) => p,
            Err(v) => return terminal(v).unwrap_or_else(|| pending("route", String::new())),
        };
        let hold = match path {
            Path::Bootstrap => no_live_client_certificate(&ctx),
            Path::Renewal => Verdict::Pass,
            Path::Serving => sans_in_inventory(&ctx, self.inventory.as_ref()),
        };
        if let Some(d) = terminal(hold) {
            return d;
        }
        Decision::Approve {
            reason: AUTO_APPROVED,
            message: approve_message(path),
        }
    }
}

fn approve_message(path: Path) -> String {
    match path {
        Path::Bootstrap => "Auto approving kubelet client certificate (bootstrap)".to_owned(),
        Path::Renewal => "Auto approving self kubelet client certificate (renewal)".to_owned(),
        Path::Serving => {
            "Auto approving kubelet serving certificate (every SAN in the node inventory)"
                .to_owned()
        }
    }
}

fn pending(rule: &'static str, why: String) -> Decision {
    Decision::Pending { rule, why }
}

fn terminal(v: Verdict) -> Option<Decision> {
    match v {
        Verdict::Pass => None,
        Verdict::Deny { rule, message } => Some(Decision::Deny {
            rule,
            message: format!("{POLICY_DENIED}: rule {rule}: {message}"),
        }),
        Verdict::Hold { rule, why } => Some(pending(rule, why)),
    }
}

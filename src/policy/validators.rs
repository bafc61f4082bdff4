//! The approval validators: small named checks, each returning a [`Verdict`] that names its
//! rule. The [`super::Approver`] runs them in fixed phases: deny rules, route, hold rules.

use std::time::SystemTime;

use super::facts::{NodeFacts, NodeState, Verdict};
use super::groups::GroupMatcher;
use super::inventory::NodeInventory;
use crate::issue::{NodeName, Requester, SignerName, SubjectIdentity, ValidatedCsr};

/// The group every node identity is in (upstream's `system:nodes`).
pub const NODES_GROUP: &str = "system:nodes";

/// What a validator sees.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The validated CSR.
    pub csr: &'a ValidatedCsr,
    /// The authenticated requester.
    pub requester: &'a Requester,
    /// Store facts about the node.
    pub facts: &'a NodeFacts,
    /// The time of the decision.
    pub now: SystemTime,
}

impl Ctx<'_> {
    /// The node the CSR names, for the kubelet signers.
    pub fn node(&self) -> Option<&NodeName> {
        match &self.csr.identity {
            SubjectIdentity::Node(n) => Some(n),
            SubjectIdentity::Client { .. } => None,
        }
    }
}

/// The auto-approval path a CSR takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// A new node's client certificate, requested with a bootstrap credential.
    Bootstrap,
    /// A node renewing its client certificate with its current one.
    Renewal,
    /// A node's serving certificate, requested by that node.
    Serving,
}

/// Deny rule `node_disabled`: a disabled node gets nothing, and its pending CSRs are denied.
pub fn node_not_disabled(ctx: &Ctx<'_>) -> Verdict {
    match (ctx.node(), ctx.facts.state) {
        (Some(node), NodeState::Disabled) => Verdict::Deny {
            rule: "node_disabled",
            message: format!("node {node} is disabled"),
        },
        _ => Verdict::Pass,
    }
}

/// Deny rule `token_node_binding`: a bootstrap token bound to node-name patterns may only
/// request certificates for matching nodes.
pub fn token_node_binding(ctx: &Ctx<'_>) -> Verdict {
    let (Some(patterns), Some(node)) = (&ctx.facts.token_node_patterns, ctx.node()) else {
        return Verdict::Pass;
    };
    if patterns.is_match(node.as_str()) {
        Verdict::Pass
    } else {
        Verdict::Deny {
            rule: "token_node_binding",
            message: format!(
                "bootstrap token {} is not bound to node {node}",
                ctx.requester.username
            ),
        }
    }
}

/// Routing: which auto-approval path applies, or a hold naming why none does.
pub fn route(ctx: &Ctx<'_>, auto_approve: &GroupMatcher) -> Result<Path, Verdict> {
    let hold = |rule, why: String| Err(Verdict::Hold { rule, why });
    let Some(node) = ctx.node() else {
        return hold(
            "admin_approval_only",
            format!("{} CSRs are approved by an admin", ctx.csr.signer),
        );
    };
    // A real node identity: the user name alone is not enough (a static token may carry any
    // user name); the node authenticator also puts the caller in `system:nodes`.
    let is_self = ctx.requester.username == node.user_name()
        && ctx.requester.groups.iter().any(|g| g == NODES_GROUP);
    match ctx.csr.signer {
        SignerName::KubeletClient if is_self => Ok(Path::Renewal),
        SignerName::KubeletClient => match auto_approve.first_match(&ctx.requester.groups) {
            Some(_) => Ok(Path::Bootstrap),
            None => hold(
                "requester_not_auto_approved",
                format!(
                    "requester {} is neither node {node} nor in an auto-approve group",
                    ctx.requester.username
                ),
            ),
        },
        SignerName::KubeletServing if is_self => Ok(Path::Serving),
        SignerName::KubeletServing => hold(
            "serving_requester_not_node",
            format!(
                "serving certificates for {node} are auto-approved only when {} asks",
                node.user_name()
            ),
        ),
        SignerName::ApiserverClient => hold(
            "admin_approval_only",
            format!("{} CSRs are approved by an admin", ctx.csr.signer),
        ),
    }
}

/// Hold rule `live_certificate_exists` (bootstrap only): a node that already holds an
/// unexpired client certificate must renew with it; a second bootstrap identity waits for an
/// admin (a stolen token must not silently mint one). `kubesigner node forget` clears it.
pub fn no_live_client_certificate(ctx: &Ctx<'_>) -> Verdict {
    match ctx.facts.latest_client_cert_not_after {
        Some(not_after) if not_after > ctx.now => Verdict::Hold {
            rule: "live_certificate_exists",
            why: format!(
                "node {} already holds an unexpired client certificate",
                ctx.node().map_or("", NodeName::as_str)
            ),
        },
        _ => Verdict::Pass,
    }
}

/// Hold rule `san_not_in_inventory` (serving only): every SAN must be in the node's inventory
/// entry (addresses, CIDRs, DNS names), where the node's recorded first bootstrap address (trust
/// on first use, when on) counts as one more address.
pub fn sans_in_inventory(ctx: &Ctx<'_>, inventory: Option<&NodeInventory>) -> Verdict {
    let Some(node) = ctx.node() else {
        return Verdict::Pass;
    };
    let listed = inventory.and_then(|inv| inv.get(node));
    let first = ctx.facts.first_bootstrap_address;
    if listed.is_none() && first.is_none() {
        return Verdict::Hold {
            rule: "node_not_in_inventory",
            why: format!("node {node} is not in the node inventory"),
        };
    }
    let allowed = |san: &crate::issue::San| {
        listed.is_some_and(|e| e.allows(san))
            || matches!((san, first), (crate::issue::San::Ip(ip), Some(f)) if *ip == f)
    };
    match ctx.csr.csr.sans.iter().find(|s| !allowed(s)) {
        Some(san) => Verdict::Hold {
            rule: "san_not_in_inventory",
            why: format!(
                "{} is not an address or name of node {node}",
                san.describe()
            ),
        },
        None => Verdict::Pass,
    }
}

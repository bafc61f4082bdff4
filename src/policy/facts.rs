//! What the caller loads from its store before asking the approver, and the verdict types.

use std::time::SystemTime;

use globset::GlobSet;

/// Whether a node may get certificates (`kubesigner node disable|enable`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NodeState {
    /// Normal.
    #[default]
    Enabled,
    /// Disabled by an admin: no auto-approval, pending CSRs denied.
    Disabled,
}

/// Facts about the node a CSR names, from the caller's store.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    /// Enabled or disabled.
    pub state: NodeState,
    /// NotAfter of the latest certificate issued for this node name by the client signer, if
    /// any (`kubesigner node forget` clears it).
    pub latest_client_cert_not_after: Option<SystemTime>,
    /// The bootstrap token's node-name patterns, if the requester is a bound bootstrap token.
    pub token_node_patterns: Option<GlobSet>,
    /// The peer address recorded for the node's first bootstrap CSR (trust on first use), when
    /// `[issuance] record_first_bootstrap_address` is on: one more inventory address.
    pub first_bootstrap_address: Option<std::net::IpAddr>,
}

/// The approver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write `Approved` with this reason (`AutoApproved`) and message.
    Approve {
        /// Condition reason.
        reason: &'static str,
        /// Condition message.
        message: String,
    },
    /// Write `Denied` (an explicit deny rule fired).
    Deny {
        /// The rule.
        rule: &'static str,
        /// Condition message (names the rule).
        message: String,
    },
    /// Leave the CSR pending for a human.
    Pending {
        /// The rule that holds it.
        rule: &'static str,
        /// Why (for logs and `kubectl describe` events).
        why: String,
    },
}

/// The reason written with `Approved`.
pub const AUTO_APPROVED: &str = "AutoApproved";
/// The reason written with `Denied` by the policy.
pub const POLICY_DENIED: &str = "KubesignerPolicyDenied";

/// A validator's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The check passes; go on.
    Pass,
    /// Deny the CSR.
    Deny {
        /// The rule.
        rule: &'static str,
        /// Why.
        message: String,
    },
    /// Hold for a human.
    Hold {
        /// The rule.
        rule: &'static str,
        /// Why.
        why: String,
    },
}

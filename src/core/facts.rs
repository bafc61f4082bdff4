//! From what a mode knows about a node and a requester to the policy's [`NodeFacts`], in one
//! place for both modes; and the policy's rule names as condition reasons.

use globset::GlobSet;

use crate::clock::from_unix;
use crate::issue::CsrRequest;
pub use crate::policy::NodeFacts;
use crate::policy::{self};
use crate::store::{CsrIndex, NodeState};

/// The policy's facts about a node: its stored state and, when the requester used a bound
/// bootstrap token, that token's node-name patterns. `first_address` is the node's recorded
/// first bootstrap address when trust on first use is on (serve mode only: a CSR object in a
/// real cluster does not carry the peer address).
pub fn node_facts(
    node: &NodeState,
    token_node_patterns: Option<GlobSet>,
    first_address: bool,
) -> NodeFacts {
    NodeFacts {
        state: if node.disabled {
            policy::NodeState::Disabled
        } else {
            policy::NodeState::Enabled
        },
        latest_client_cert_not_after: node.latest_not_after_unix.map(from_unix),
        token_node_patterns,
        first_bootstrap_address: node.first_bootstrap_address.filter(|_| first_address),
    }
}

/// The store's index columns of a new CSR, from its one parse: the subject CN (exactly one,
/// decoded whatever its string type) and the node it names.
pub fn index_of(request: &CsrRequest) -> CsrIndex {
    CsrIndex {
        subject_cn: request.common_name().map(str::to_owned),
        node_name: request.node_name().map(|n| n.as_str().to_owned()),
    }
}

/// `node_disabled` → `NodeDisabled`: a policy rule name as a condition reason.
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

#[cfg(test)]
mod tests;

//! Approval policy: small named validators run in fixed phases, and the auto-approval rules.
//!
//! Phases: (1) deny rules (`node_disabled`, `token_node_binding`) → `Denied`; (2) route: which
//! auto-approval path applies (bootstrap, renewal, serving) or pending; (3) the path's hold
//! rules (`live_certificate_exists`, `san_not_in_inventory`) → pending; else `AutoApproved`.

mod approver;
mod facts;
mod groups;
pub mod inventory;
pub mod validators;

pub use crate::issue::Requester;
pub use approver::Approver;
pub use facts::{AUTO_APPROVED, Decision, NodeFacts, NodeState, POLICY_DENIED, Verdict};
pub use groups::{GroupMatcher, GroupPatternError};
pub use inventory::{InventoryError, NodeEntry, NodeInventory};

#[cfg(test)]
mod tests;

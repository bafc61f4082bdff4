//! The issuance core both modes call: **parse once → facts → policy → build → sign → verify**,
//! returning one typed outcome.
//!
//! - [`crate::issue::CsrRequest::parse`] is the one parser of `spec.request`. `serve` parses at
//!   the API edge and passes the value on (authorization, create limits, node state, the store's
//!   index and the audit record read it); `controller` parses each CSR object it acts on.
//! - [`Core`] validates that value (key rules, proof of possession, signer profile), decides
//!   approval with [`crate::policy::Approver`] from [`NodeFacts`] built here
//!   ([`facts::node_facts`]), and signs with [`crate::issue::Issuer`] (every signature verified
//!   with the CA public key before it leaves the signer, the finished certificate compared with
//!   the profile).
//! - [`unknown_signer`] holds the `Failed` condition for signer names the appliance does not
//!   serve (serve mode only).
//! - [`NodeLocks`] serializes the decisions about one node, so "one live certificate per node"
//!   is checked and recorded in one step.
//!
//! The core never knows which mode runs it.

mod build;
mod engine;
pub mod facts;
mod node_locks;
mod outcome;
pub mod unknown_signer;

pub use build::{CoreBuildError, build_approver, build_core, build_issuer};
pub use engine::{Core, ReadyFn};
pub use facts::{NodeFacts, index_of, node_facts, reason_of};
pub use node_locks::{NodeGuard, NodeLocks};
pub use outcome::{Decision, Inspection, Issued, Outcome, SignFailure};

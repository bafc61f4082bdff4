//! The kube-apiserver emulation for external-signing mode (`[server] external_signing`, issue
//! 10): the appliance stores and serves CSRs as kube-apiserver does, a `kubesigner controller`
//! writes `status.certificate` through `/status`, and its replicas elect a leader with
//! `coordination.k8s.io/v1` Leases (authorized by the RBAC rules in `crate::authz::rbac`).
//! None of this runs in the standalone appliance (`serve`): a reader of the appliance can skip
//! this folder.
//!
//! - [`status`]: the apiserver's rules for a client's write of `status.certificate`.
//! - [`lease`]: the Lease resource (get, list, create, update, patch); its documents and
//!   validation in `lease_rules`, its OpenAPI v3 document in `lease_openapi`.

pub mod lease;
pub(super) mod lease_openapi;
mod lease_rules;
pub mod status;

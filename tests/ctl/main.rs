//! The controller: burst, CLI, fail-over and issue against an appliance, and an external
//! kube-rs client with the shipped RBAC. One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod controller_active;
mod controller_active_faults;
mod controller_burst;
mod controller_cli;
mod controller_failover;
mod controller_issue;
mod external_kube_rs;
mod external_rbac;

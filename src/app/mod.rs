//! One wiring place per mode: what a process opens (the token keys, the store), builds once
//! (the issuance core and what serves it) and stops in order. `cmd/` maps arguments to these.
//!
//! - [`serve`]: the appliance (`kubesigner serve`, `kubesigner dev`);
//! - [`controller`]: the external signer behind a kube-apiserver (`kubesigner controller`);
//! - [`keys`]: the token keys both open, one login per token;
//! - [`lifecycle`]: process lifecycle both share (root refusal, the runtime after the module
//!   environment, systemd readiness and watchdog, SIGTERM).

pub mod controller;
pub mod keys;
pub mod lifecycle;
pub mod metrics_listener;
pub mod serve;

//! Operations: shipped artefacts, audit log and checkpoints, backup, lifecycle, metrics, no
//! secrets in logs, the package and release, reload, request ids, signature audit and testssl. One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod artefacts;
mod audit;
mod audit_checkpoints;
mod audit_keygen;
mod backup;
mod lifecycle;
mod metrics;
mod no_secrets_in_logs;
mod package;
mod release;
mod reload;
mod request_id;
mod sessions_metric;
mod signature_audit;
mod testssl;

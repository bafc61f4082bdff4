//! The one reload mechanism: one task per process ([`spawn`]) with two triggers. On SIGHUP
//! (`serve`) the static token file, the client CA bundles and the node inventory are read
//! again, each on its own — a file that does not load keeps the previous version in force and
//! the log says why; every other key needs a restart, and a changed one is named in the log;
//! each SIGHUP is counted in `kubesigner_reloads_total{result}`. And the node inventory's file
//! is polled (`serve` and `controller`): a new version replaces the approval policy.
//!
//! Reloaded: `[auth] token_auth_file` (contents and path), `[auth] client_ca_files` (contents
//! and list; the appliance CA stays trusted), the contents of `[issuance] node_inventory`.
//! Restart needed: everything else (`data_dir`, `[server]`, `[signer]`, `[ca]`, `[audit]`,
//! `[gc]`, `[limits]`, the other `[auth]` and `[issuance]` keys).

use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use crate::authn::{Authenticator, StaticTokens};
use crate::config::Config;
use crate::core::Core;

mod client_verifier;
mod error;
pub mod inventory;
mod task;

pub use client_verifier::ReloadableClientVerifier;
pub use error::{LoadError, ReloadError};
pub use task::{LoadFn, spawn};

/// What a reload swaps: handed out by the wiring at start (`app::serve`, `app::controller`).
#[derive(Clone)]
pub struct ReloadHandles {
    /// The issuance core (approval policy over the node inventory).
    pub core: Arc<Core>,
    /// The authenticator (static tokens); `None` in controller mode.
    pub authn: Option<Arc<Authenticator>>,
    /// The client certificate trust; `None` in controller mode.
    pub client_trust: Option<ClientTrust>,
}

/// The client certificate verifier and the roots it always trusts.
#[derive(Clone)]
pub struct ClientTrust {
    /// The client certificate verifier.
    pub verifier: Arc<ReloadableClientVerifier>,
    /// The CA certificates always trusted for client certificates (the appliance's own).
    pub appliance_roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for ReloadHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadHandles").finish_non_exhaustive()
    }
}

/// Which parts a reload changed, and which failed (kept the previous version).
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// Parts reloaded.
    pub reloaded: Vec<&'static str>,
    /// Parts that failed, with why.
    pub failed: Vec<(&'static str, ReloadError)>,
    /// Keys that changed but need a restart.
    pub need_restart: Vec<&'static str>,
}

/// Re-reads the reloadable files with `new` (the configuration as loaded now; `started` is the
/// one the server started with). Blocking (reads files).
pub fn reload(h: &ReloadHandles, started: &Config, new: &Config) -> ReloadReport {
    let mut report = ReloadReport::default();
    let mut part = |name: &'static str, r: Result<(), ReloadError>| match r {
        Ok(()) => report.reloaded.push(name),
        Err(why) => report.failed.push((name, why)),
    };
    if let Some(authn) = &h.authn {
        part("token_auth_file", reload_tokens(authn, new));
    }
    if let Some(trust) = &h.client_trust {
        part("client_ca_files", reload_client_cas(trust, new));
    }
    if let Some(path) = &started.issuance.node_inventory {
        part("node_inventory", reload_inventory(h, started, path));
    }
    report.need_restart = restart_keys(started, new);
    report
}

fn reload_tokens(authn: &Authenticator, new: &Config) -> Result<(), ReloadError> {
    let tokens = match &new.auth.token_auth_file {
        Some(p) => StaticTokens::load(p)?,
        None => StaticTokens::empty(),
    };
    authn.replace_static_tokens(tokens);
    Ok(())
}

fn reload_client_cas(trust: &ClientTrust, new: &Config) -> Result<(), ReloadError> {
    let mut roots = trust.appliance_roots.clone();
    for f in &new.auth.client_ca_files {
        roots.extend(crate::tls::load_certs(f)?);
    }
    let provider = Arc::new(crate::tls::crypto_provider());
    let verifier = crate::tls::client_verifier(roots, &provider)?;
    trust.verifier.replace(verifier);
    Ok(())
}

fn reload_inventory(
    h: &ReloadHandles,
    started: &Config,
    path: &std::path::Path,
) -> Result<(), ReloadError> {
    let approver = inventory::rebuild(path, &started.auth, &started.issuance)?;
    h.core.replace_approver(approver);
    Ok(())
}

/// The keys outside the reloadable set that differ.
fn restart_keys(a: &Config, b: &Config) -> Vec<&'static str> {
    let d = |x: &dyn std::fmt::Debug, y: &dyn std::fmt::Debug| format!("{x:?}") != format!("{y:?}");
    let strip_auth = |c: &Config| {
        let mut auth = c.auth.clone();
        auth.token_auth_file = None;
        auth.client_ca_files.clear();
        auth
    };
    let mut out = Vec::new();
    let checks: [(&'static str, bool); 9] = [
        ("data_dir", a.data_dir != b.data_dir),
        ("[server]", a.server != b.server),
        ("[signer]", d(&a.signer, &b.signer)),
        ("[ca]", d(&a.ca, &b.ca)),
        (
            "[auth] (other than token_auth_file, client_ca_files)",
            strip_auth(a) != strip_auth(b),
        ),
        ("[issuance]", a.issuance != b.issuance),
        ("[gc]", d(&a.gc, &b.gc)),
        ("[limits]", d(&a.limits, &b.limits)),
        ("[audit]", a.audit != b.audit),
    ];
    for (name, changed) in checks {
        if changed {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests;

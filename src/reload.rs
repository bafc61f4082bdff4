//! SIGHUP reload for `kubesigner serve`: the static token file, the client CA bundles and the
//! node inventory are read again, each on its own — a file that does not load keeps the
//! previous version in force and the log says why. Every other key needs a restart; a changed
//! one is named in the log. Each reload is counted in `kubesigner_reloads_total{result}`.
//!
//! Reloaded: `[auth] token_auth_file` (contents and path), `[auth] client_ca_files` (contents
//! and list; the appliance CA stays trusted), the contents of `[issuance] node_inventory`
//! (also polled, `core::inventory_reload`). Restart needed: everything else (`data_dir`,
//! `[server]`, `[signer]`, `[ca]`, `[audit]`, `[gc]`, `[limits]`, the other `[auth]` and
//! `[issuance]` keys).

use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::authn::{Authenticator, StaticTokens};
use crate::config::Config;
use crate::core::Core;

/// A client certificate verifier whose trust anchors a reload swaps. Connections in their
/// handshake finish with the verifier they started with.
///
/// It sends no CA-name hints (`certificate_authorities`): the list would have to outlive a
/// swap. Clients with one configured certificate (kubectl, kubelets, client libraries) send
/// it regardless.
#[derive(Debug)]
pub struct ReloadableClientVerifier {
    inner: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl ReloadableClientVerifier {
    /// Starts with `inner`.
    pub fn new(inner: Arc<dyn ClientCertVerifier>) -> ReloadableClientVerifier {
        ReloadableClientVerifier {
            inner: RwLock::new(inner),
        }
    }

    /// Swaps in a new verifier.
    pub fn replace(&self, inner: Arc<dyn ClientCertVerifier>) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = inner;
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ClientCertVerifier for ReloadableClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// What a reload swaps: handed out by the server at start.
#[derive(Clone)]
pub struct ReloadHandles {
    /// The authenticator (static tokens).
    pub authn: Arc<Authenticator>,
    /// The issuance core (approval policy over the node inventory).
    pub core: Arc<Core>,
    /// The client certificate verifier.
    pub client_auth: Arc<ReloadableClientVerifier>,
    /// The CA certificates always trusted for client certificates (the appliance's own).
    pub appliance_roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for ReloadHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadHandles").finish_non_exhaustive()
    }
}

/// Which parts a reload changed, and which failed (kept the previous version).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Parts reloaded.
    pub reloaded: Vec<&'static str>,
    /// Parts that failed, with why.
    pub failed: Vec<(&'static str, String)>,
    /// Keys that changed but need a restart.
    pub need_restart: Vec<&'static str>,
}

/// Re-reads the reloadable files with `new` (the configuration as loaded now; `started` is the
/// one the server started with). Blocking (reads files).
pub fn reload(h: &ReloadHandles, started: &Config, new: &Config) -> ReloadReport {
    let mut report = ReloadReport::default();
    let mut part = |name: &'static str, r: Result<(), String>| match r {
        Ok(()) => report.reloaded.push(name),
        Err(why) => report.failed.push((name, why)),
    };
    part("token_auth_file", reload_tokens(h, new));
    part("client_ca_files", reload_client_cas(h, new));
    if let Some(path) = &started.issuance.node_inventory {
        part("node_inventory", reload_inventory(h, started, path));
    }
    report.need_restart = restart_keys(started, new);
    report
}

fn reload_tokens(h: &ReloadHandles, new: &Config) -> Result<(), String> {
    let tokens = match &new.auth.token_auth_file {
        Some(p) => StaticTokens::load(p).map_err(|e| e.to_string())?,
        None => StaticTokens::empty(),
    };
    h.authn.replace_static_tokens(tokens);
    Ok(())
}

fn reload_client_cas(h: &ReloadHandles, new: &Config) -> Result<(), String> {
    let mut roots = h.appliance_roots.clone();
    for f in &new.auth.client_ca_files {
        roots.extend(crate::tls::load_certs(f).map_err(|e| e.to_string())?);
    }
    let provider = Arc::new(crate::tls::crypto_provider());
    let verifier = crate::tls::client_verifier(roots, &provider).map_err(|e| e.to_string())?;
    h.client_auth.replace(verifier);
    Ok(())
}

fn reload_inventory(
    h: &ReloadHandles,
    started: &Config,
    path: &std::path::Path,
) -> Result<(), String> {
    let approver = crate::core::inventory_reload::rebuild(path, &started.auth, &started.issuance)?;
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

/// Installs the SIGHUP handler now (so a SIGHUP after this returns cannot end the process)
/// and reloads on each, until the task is aborted. `load` reads the configuration again (the
/// file with the command line's overrides).
pub fn spawn_on_sighup(
    h: ReloadHandles,
    started: Config,
    load: impl Fn() -> Result<Config, String> + Send + Sync + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: reload disabled");
            return None;
        }
    };
    Some(tokio::spawn(on_sighup(hup, h, started, load)))
}

async fn on_sighup(
    mut hup: tokio::signal::unix::Signal,
    h: ReloadHandles,
    started: Config,
    load: impl Fn() -> Result<Config, String> + Send + Sync + 'static,
) {
    let load = Arc::new(load);
    while hup.recv().await.is_some() {
        let (h2, started2, load2) = (h.clone(), started.clone(), Arc::clone(&load));
        let done = tokio::task::spawn_blocking(move || match load2() {
            Ok(new) => Ok(reload(&h2, &started2, &new)),
            Err(why) => Err(why),
        })
        .await;
        log_outcome(done);
    }
}

fn log_outcome(done: Result<Result<ReloadReport, String>, tokio::task::JoinError>) {
    let m = crate::metrics::global();
    let result = match done {
        Ok(Ok(r)) => {
            for (part, why) in &r.failed {
                tracing::warn!(part, error = %why, "reload: keeping the previous version");
            }
            if !r.need_restart.is_empty() {
                tracing::warn!(keys = ?r.need_restart, "reload: these changes need a restart");
            }
            tracing::info!(reloaded = ?r.reloaded, failed = r.failed.len(), "reloaded on SIGHUP");
            if r.failed.is_empty() { "ok" } else { "failed" }
        }
        Ok(Err(why)) => {
            tracing::warn!(error = %why, "reload: configuration does not load; keeping the previous one");
            "failed"
        }
        Err(e) => {
            tracing::warn!(error = %e, "reload task failed");
            "failed"
        }
    };
    m.reloads
        .get_or_create(&crate::metrics::ResultLabels { result })
        .inc();
}

#[cfg(test)]
mod tests;

//! `kubesigner serve`'s wiring: opens the token keys and the store, builds the issuance core
//! once, the authenticator, the authorizer and the API over them, the serving certificate, and
//! binds the HTTPS listener (`api::edge::server`); starts the backlog signer, GC, the serving
//! certificate's renewal, the inventory reload and the audit checkpoints; stops them in order.
//! [`Server::start`] is the entry point `kubesigner serve` and `kubesigner dev` call.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::api::edge::server::{BindError, Listening, listen};
use crate::api::edge::serving::serving_identity;
use crate::api::edge::serving_renew::{Renewal, ServingCert, renew_loop};
use crate::api::{Api, Limits};
use crate::app::keys::Keys;
use crate::app::lifecycle;
use crate::authn::{Authenticator, AuthnError};
use crate::authz::AuthzConfig;
use crate::config::Config;
use crate::core::{CoreBuildError, ReadyFn, build_core, build_issuer};
use crate::issue::{CaError, IssueError};
use crate::signer::{SignKey, SignerError, TokenSigner};
use crate::store::{Store, StoreError};
use crate::tls::{
    TlsError, load_certs, load_private_key, server_config_verified,
    server_config_with_resolver_verified,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Authentication inputs (token file, bootstrap-token table) could not be loaded.
    #[error("authentication: {0}")]
    Authn(#[from] AuthnError),
    /// The signer (token) could not be opened.
    #[error("signer: {0}")]
    Signer(#[from] SignerError),
    /// The CA certificate could not be loaded.
    #[error("CA certificate: {0}")]
    Ca(#[from] CaError),
    /// The issuer refused the CA/key pair, or the serving certificate could not be issued.
    #[error("issuer: {0}")]
    Issue(#[from] IssueError),
    /// The TLS configuration or its files.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// `tls_cert_file` without `tls_private_key_file` or the other way round.
    #[error("tls_cert_file and tls_private_key_file must be given together")]
    TlsFilesIncomplete,
    /// The listen address could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The issuance core (CAs, approval policy, node inventory).
    #[error(transparent)]
    Core(#[from] CoreBuildError),
    /// A blocking start-up task failed.
    #[error("start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A CA-key signature (the serving certificate) could not be recorded in the audit log.
    #[error("audit: {0}")]
    Audit(#[from] crate::audit::signature::SignatureAuditError),
    /// `[auth] rbac_manifests` could not be loaded.
    #[error("[auth] rbac_manifests: {0}")]
    Rbac(#[from] crate::authz::rbac::RbacError),
}

impl ServeError {
    /// The process exit code (sysexits) for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServeError::Signer(e) => e.exit_code(),
            ServeError::Ca(_)
            | ServeError::Tls(_)
            | ServeError::TlsFilesIncomplete
            | ServeError::Authn(_) => crate::exit::USAGE,
            ServeError::Issue(_) | ServeError::Core(_) | ServeError::Rbac(_) => crate::exit::USAGE,
            // A store from a newer release stays so across restarts: not worth one.
            ServeError::Store(crate::store::StoreError::SchemaTooNew { .. }) => crate::exit::USAGE,
            ServeError::Store(_) | ServeError::Bind(_) | ServeError::Audit(_) => {
                crate::exit::UNAVAILABLE
            }
            ServeError::Join(_) => crate::exit::SOFTWARE,
        }
    }
}

/// The API bounds from `[server]` and `[limits]`.
pub fn limits(cfg: &Config) -> Limits {
    let s = &cfg.server;
    Limits {
        create: cfg.limits.clone(),
        max_body_bytes: s.max_body_bytes,
        max_watches: s.max_watches,
        max_watch_timeout: s.max_watch_timeout,
        body_read_timeout: s.body_read_timeout,
        max_requests_in_flight: s.max_requests_in_flight,
        max_requests_per_identity: s.max_requests_per_identity,
        admin_reserved_requests: s.admin_reserved_requests,
        max_watches_per_identity: s.max_watches_per_identity,
        admin_reserved_watches: s.admin_reserved_watches,
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    listening: Option<Listening>,
    local_addr: SocketAddr,
    api: Api,
    backlog: JoinHandle<()>,
    gc: Option<JoinHandle<()>>,
    renew: Option<JoinHandle<()>>,
    audit: Option<crate::audit::checkpoint::Checkpointer>,
    reload_handles: crate::reload::ReloadHandles,
    reload: JoinHandle<()>,
}

impl Server {
    /// Opens the token key named by `[signer]` (and those of `[ca.signers]`; one login per
    /// token for the process) and starts serving. The module environment
    /// (`[signer].environment`) must already be applied (`signer::apply_module_environment`,
    /// before the runtime starts).
    pub async fn start(cfg: &Config) -> Result<Server, ServeError> {
        let keys = Keys::open(cfg).await??;
        let (ready, per_signer) = (keys.ready(), keys.per_signer_keys());
        let main = Arc::clone(&keys.main);
        let audit_signer = Some(Arc::clone(&keys.main));
        let mut server = Self::start_with_keys(cfg, main, per_signer, ready).await?;
        server.start_checkpoints(cfg, audit_signer);
        Ok(server)
    }

    /// Starts the signed audit checkpoints (`[audit]`) with the CA key's token.
    fn start_checkpoints(&mut self, cfg: &Config, signer: Option<Arc<TokenSigner>>) {
        self.audit = signer.map(|s| {
            crate::audit::checkpoint::spawn(self.api.store().clone(), s, cfg.audit.clone())
        });
    }

    /// Starts serving with an already-open token signer (dev mode reuses its own). Per-signer
    /// CAs (`[ca.signers]`) need [`Server::start_with_keys`].
    pub async fn start_with_signer(
        cfg: &Config,
        signer: Arc<TokenSigner>,
    ) -> Result<Server, ServeError> {
        let ready_signer = Arc::clone(&signer);
        let audit_signer = Arc::clone(&signer);
        let mut server =
            Self::start_with_key(cfg, signer, Arc::new(move || ready_signer.ready())).await?;
        server.start_checkpoints(cfg, Some(audit_signer));
        Ok(server)
    }

    /// Starts serving with any CA key (tests use a software key) and its readiness.
    pub async fn start_with_key(
        cfg: &Config,
        key: Arc<dyn SignKey>,
        ready: ReadyFn,
    ) -> Result<Server, ServeError> {
        Self::start_with_keys(cfg, key, BTreeMap::new(), ready).await
    }

    /// Starts serving with the main CA key and one key per `[ca.signers]` entry (by name).
    pub async fn start_with_keys(
        cfg: &Config,
        key: Arc<dyn SignKey>,
        signer_keys: BTreeMap<String, Arc<dyn SignKey>>,
        ready: ReadyFn,
    ) -> Result<Server, ServeError> {
        let store = Store::open(&cfg.data_dir)?;
        let authn = Arc::new(Authenticator::new(&cfg.auth, &cfg.data_dir)?);
        let (issuer, mut roots) = build_issuer(cfg, Arc::clone(&key), signer_keys.clone())?;
        let appliance_roots = roots.clone();
        for f in &cfg.auth.client_ca_files {
            roots.extend(load_certs(f)?);
        }
        // Swapped by a SIGHUP reload (crate::reload).
        let client_auth = Arc::new(crate::reload::ReloadableClientVerifier::new(
            crate::tls::client_verifier(roots, &Arc::new(crate::tls::crypto_provider()))?,
        ));
        let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = client_auth.clone();
        let mut renewal = None;
        let tls = match (&cfg.server.tls_cert_file, &cfg.server.tls_private_key_file) {
            (Some(c), Some(k)) => {
                server_config_verified(load_certs(c)?, load_private_key(k)?, verifier)?
            }
            (None, None) => {
                let s = &cfg.server;
                let id = serving_identity(&issuer, s.listen, &s.serving_names, s.serving_cert_ttl)?;
                crate::api::edge::serving_renew::record_serving(&store, &id).await?;
                let not_after = id.not_after;
                crate::metrics::global()
                    .serving_not_after
                    .set(crate::clock::unix_secs(not_after));
                let cert = ServingCert::new(id)?;
                let again = Renewal {
                    issuer: build_issuer(cfg, key, signer_keys)?.0,
                    listen: s.listen,
                    names: s.serving_names.clone(),
                    ttl: s.serving_cert_ttl,
                    store: store.clone(),
                };
                renewal = Some((Arc::clone(&cert), not_after, again));
                server_config_with_resolver_verified(cert, verifier)?
            }
            _ => return Err(ServeError::TlsFilesIncomplete),
        };
        let core = build_core(cfg, issuer, ready)?;
        let mut authz = AuthzConfig::from(&cfg.auth);
        if cfg.server.external_signing {
            let rbac = crate::authz::rbac::Rbac::load(&cfg.auth.rbac_manifests)?;
            tracing::info!(
                bindings = rbac.bindings(),
                "external signing: CSRs are neither approved nor signed here"
            );
            authz.rbac = Some(crate::authz::SharedRbac(Arc::new(rbac)));
        } else if !cfg.auth.rbac_manifests.is_empty() {
            tracing::warn!(
                "[auth] rbac_manifests is used only with [server] external_signing; ignored"
            );
        }
        let reload_handles = crate::reload::ReloadHandles {
            core: Arc::clone(&core),
            authn: Some(Arc::clone(&authn)),
            client_trust: Some(crate::reload::ClientTrust {
                verifier: client_auth,
                appliance_roots,
            }),
        };
        // The inventory poll from the start; SIGHUP once the caller can read the configuration
        // again (`Server::reload_on_sighup`).
        let reload = crate::reload::spawn(reload_handles.clone(), cfg.clone(), None);
        let api = Api::with_mode(
            store,
            authn,
            authz,
            core,
            limits(cfg),
            cfg.server.external_signing,
        );
        let listening = listen(&cfg.server, tls, api.clone()).await?;
        let local_addr = listening.local_addr();
        let backlog = api.spawn_backlog();
        let renew =
            renewal.map(|(cert, not_after, r)| tokio::spawn(renew_loop(cert, not_after, r)));
        let gc = api.spawn_gc(cfg.gc.clone());
        tracing::info!(%local_addr, "serving");
        Ok(Server {
            listening: Some(listening),
            local_addr,
            api,
            backlog,
            gc,
            renew,
            audit: None,
            reload_handles,
            reload,
        })
    }

    /// What a reload swaps (`crate::reload`).
    pub fn reload_handles(&self) -> &crate::reload::ReloadHandles {
        &self.reload_handles
    }

    /// Reloads on SIGHUP from now on (as well as polling the inventory), reading the
    /// configuration again with `load`; `started` is the configuration the server runs.
    pub fn reload_on_sighup(&mut self, started: &Config, load: crate::reload::LoadFn) {
        self.reload.abort();
        self.reload =
            crate::reload::spawn(self.reload_handles.clone(), started.clone(), Some(load));
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The API (and its store).
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Stops accepting, lets open requests finish (up to a grace period), stops the backlog.
    pub async fn shutdown(mut self) {
        if let Some(listening) = self.listening.take() {
            listening.stop().await;
        }
        self.backlog.abort();
        if let Some(renew) = &self.renew {
            renew.abort();
        }
        if let Some(gc) = &self.gc {
            gc.abort();
        }
        self.reload.abort();
        if let Some(audit) = self.audit.take() {
            audit.finish().await;
        }
    }
}

/// Runs `kubesigner serve` with `cfg` until SIGTERM / SIGINT and returns the exit code: takes
/// the data dir's lock, applies the module environment, starts the runtime and the server
/// ([`run_notified`]), and closes the token within a grace period. `load` reads the
/// configuration again for a SIGHUP reload.
pub fn run(
    cfg: Config,
    load: impl Fn() -> Result<Config, crate::reload::LoadError> + Send + Sync + 'static,
) -> i32 {
    // Held for the process's lifetime: `kubesigner restore` refuses while it is taken.
    let _store_lock = match crate::store::lock_data_dir(&cfg.data_dir) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot lock the data dir");
            return crate::exit::UNAVAILABLE;
        }
    };
    let runtime = match lifecycle::module_runtime(&cfg.signer.environment) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let served = runtime.block_on(run_notified(cfg, load));
    // Drops the remaining tasks and with them the token signer (sessions closed, logout,
    // C_Finalize); a call stuck in a hung token is not waited for beyond the grace.
    runtime.shutdown_timeout(lifecycle::TOKEN_CLOSE_GRACE);
    match served {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "serve failed");
            e.exit_code()
        }
    }
}

/// Starts the server, tells systemd it is ready, pings the watchdog while healthy, and stops
/// on SIGTERM / SIGINT.
pub async fn run_notified(
    cfg: Config,
    load: impl Fn() -> Result<Config, crate::reload::LoadError> + Send + Sync + 'static,
) -> Result<(), ServeError> {
    let mut server = Server::start(&cfg).await?;
    server.reload_on_sighup(&cfg, std::sync::Arc::new(load));
    lifecycle::notify_ready();
    let watchdog = tokio::spawn(lifecycle::watchdog(
        server.api().clone(),
        cfg.data_dir.clone(),
    ));
    lifecycle::shutdown_signal().await;
    tracing::info!("shutting down");
    lifecycle::notify_stopping();
    watchdog.abort();
    server.shutdown().await;
    Ok(())
}

/// Runs the appliance from `cfg` until `shutdown` completes (e.g. SIGTERM).
pub async fn serve(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let server = Server::start(&cfg).await?;
    shutdown.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

//! The HTTPS server: TLS (`tls::server_config`), HTTP/1.1 + h2 (hyper-util auto), the API
//! router, the signer backlog task, graceful shutdown. [`Server::start`] is the entry point
//! `kubesigner serve` and `kubesigner dev` call; [`serve`] runs until a shutdown future fires.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::conn::{Activity, PerAddress, TrackedBody};
use super::serving::serving_identity;
use super::serving_renew::{Renewal, ServingCert, renew_loop};
use crate::api::{Api, Limits};
use crate::authn::{Authenticator, AuthnError};
use crate::authz::AuthzConfig;
use crate::config::Config;
use crate::core::{CoreBuildError, ReadyFn, build_core, build_issuer};
use crate::issue::{CaError, IssueError};
use crate::signer::{Pkcs11Uri, SignKey, SignerError, TokenSigner, UriOrigin};
use crate::store::{Store, StoreError};
use crate::tls::{
    TlsError, load_certs, load_private_key, server_config_verified,
    server_config_with_resolver_verified,
};

/// How long graceful shutdown waits for open connections (watches end at once).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Concurrent h2 streams per connection (hyper's default is 200; a kubelet uses a handful).
const MAX_H2_STREAMS: u32 = 100;

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
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
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
            ServeError::Store(_) | ServeError::Bind { .. } | ServeError::Audit(_) => {
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
    local_addr: SocketAddr,
    api: Api,
    stop: Option<oneshot::Sender<()>>,
    accept: JoinHandle<()>,
    backlog: JoinHandle<()>,
    gc: Option<JoinHandle<()>>,
    renew: Option<JoinHandle<()>>,
    inventory_reload: Option<JoinHandle<()>>,
    audit: Option<crate::audit::checkpoint::Checkpointer>,
    reload: crate::reload::ReloadHandles,
}

impl Server {
    /// Opens the token key named by `[signer]` (and those of `[ca.signers]`; one login per
    /// token for the process) and starts serving. The module environment
    /// (`[signer].environment`) must already be applied (`signer::apply_module_environment`,
    /// before the runtime starts).
    pub async fn start(cfg: &Config) -> Result<Server, ServeError> {
        let settings = crate::signer::Settings::from(&cfg.signer);
        let mut uris = vec![(String::new(), cfg.signer.key.clone())];
        uris.extend(
            cfg.ca
                .signers
                .iter()
                .map(|(name, sc)| (name.clone(), sc.key.clone())),
        );
        let opened = tokio::task::spawn_blocking(move || {
            uris.into_iter()
                .map(|(name, key)| {
                    let uri =
                        Pkcs11Uri::parse(&key, UriOrigin::ConfigFile).map_err(SignerError::from)?;
                    Ok((name, TokenSigner::open(&uri, settings.clone())?))
                })
                .collect::<Result<Vec<_>, SignerError>>()
        })
        .await??;
        let signers: Vec<Arc<TokenSigner>> = opened.iter().map(|(_, s)| Arc::clone(s)).collect();
        let audit_signer = opened
            .iter()
            .find(|(name, _)| name.is_empty())
            .map(|(_, s)| Arc::clone(s));
        let ready: ReadyFn = Arc::new(move || signers.iter().all(|s| s.ready()));
        let mut keys = BTreeMap::new();
        let mut main = None;
        for (name, signer) in opened {
            let key: Arc<dyn SignKey> = signer;
            if name.is_empty() {
                main = Some(key);
            } else {
                keys.insert(name, key);
            }
        }
        let main = main.ok_or(CoreBuildError::MissingSignerKey {
            name: String::new(),
        })?;
        let mut server = Self::start_with_keys(cfg, main, keys, ready).await?;
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
                super::serving_renew::record_serving(&store, &id).await?;
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
        let (core, inventory_reload) = build_core(cfg, issuer, ready)?;
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
        let reload = crate::reload::ReloadHandles {
            authn: Arc::clone(&authn),
            core: Arc::clone(&core),
            client_auth,
            appliance_roots,
        };
        let api = Api::with_mode(
            store,
            authn,
            authz,
            core,
            limits(cfg),
            cfg.server.external_signing,
        );
        let listener = TcpListener::bind(cfg.server.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: cfg.server.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: cfg.server.listen,
            source,
        })?;
        let (stop, stopped) = oneshot::channel();
        let conn = ConnSettings::from(&cfg.server);
        let accept = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(tls),
            api.clone(),
            conn,
            stopped,
        ));
        let backlog = api.spawn_backlog();
        let renew =
            renewal.map(|(cert, not_after, r)| tokio::spawn(renew_loop(cert, not_after, r)));
        let gc = api.spawn_gc(cfg.gc.clone());
        tracing::info!(%local_addr, "serving");
        Ok(Server {
            local_addr,
            api,
            stop: Some(stop),
            accept,
            backlog,
            gc,
            renew,
            inventory_reload,
            audit: None,
            reload,
        })
    }

    /// What a SIGHUP reload swaps (`crate::reload`).
    pub fn reload_handles(&self) -> &crate::reload::ReloadHandles {
        &self.reload
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.accept).await;
        self.backlog.abort();
        if let Some(renew) = &self.renew {
            renew.abort();
        }
        if let Some(gc) = &self.gc {
            gc.abort();
        }
        if let Some(reload) = &self.inventory_reload {
            reload.abort();
        }
        if let Some(audit) = self.audit.take() {
            audit.finish().await;
        }
    }
}

/// Runs the appliance from `cfg` until `shutdown` completes (e.g. SIGTERM).
pub async fn serve(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let server = Server::start(&cfg).await?;
    shutdown.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct ConnSettings {
    max_connections: usize,
    per_address: usize,
    handshake: Duration,
    headers: Duration,
    idle: Duration,
    h2_keepalive: Duration,
}

impl ConnSettings {
    fn from(s: &crate::config::ServerConfig) -> ConnSettings {
        ConnSettings {
            max_connections: s.max_connections,
            per_address: s
                .max_connections_per_address
                .unwrap_or((s.max_connections / 4).max(1)),
            handshake: s.handshake_timeout,
            headers: s.header_read_timeout,
            idle: s.idle_timeout,
            h2_keepalive: s.http2_keepalive_interval,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    api: Api,
    conn: ConnSettings,
    mut stop: oneshot::Receiver<()>,
) {
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Semaphore::new(conn.max_connections));
    let per_address = PerAddress::new(conn.per_address);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut stop => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Some(address_slot) = per_address.try_acquire(peer.ip().to_canonical()) else {
            super::conn::closed("per_address_cap");
            tracing::debug!(%peer, "connection cap for this address reached");
            drop(tcp);
            continue;
        };
        // Answers are small and written whole: send them at once instead of waiting for the
        // peer's delayed ACK (Nagle), which adds up to 40 ms to a keep-alive request.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let (acceptor, api, shutdown) = (acceptor.clone(), api.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _slots = (permit, address_slot);
            serve_one(tcp, peer, acceptor, api, conn, shutdown).await;
        });
    }
    drop(listener);
    let _ = shutdown_tx.send(true);
    // Every connection task holds a slot until it ends.
    let all = u32::try_from(conn.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(
        SHUTDOWN_GRACE + Duration::from_secs(1),
        slots.acquire_many(all),
    )
    .await
    .is_err()
    {
        tracing::warn!("connections still open after the grace period");
    }
}

/// One connection: TLS, then HTTP/1.1 or h2 under the edge deadlines (`conn::drive`).
async fn serve_one(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    api: Api,
    conn: ConnSettings,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(conn.handshake, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => {
            super::conn::closed("handshake_timeout");
            return tracing::debug!(%peer, "TLS handshake timed out");
        }
    };
    let chain: Option<Arc<Vec<CertificateDer<'static>>>> = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| Arc::new(c.iter().map(|d| d.clone().into_owned()).collect()));
    let activity = Activity::new();
    let tracked = Arc::clone(&activity);
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let in_flight = tracked.begin();
        req.extensions_mut()
            .insert(super::peer::PeerAddr(peer.ip().to_canonical()));
        let (api, chain) = (api.clone(), chain.clone());
        async move {
            let resp = api.handle(req, chain.as_deref().map(Vec::as_slice)).await;
            Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, in_flight)))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(conn.headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .keep_alive_interval(conn.h2_keepalive)
        .keep_alive_timeout(conn.h2_keepalive);
    let served = builder.serve_connection(TokioIo::new(tls), svc);
    let result = super::conn::drive(
        served,
        |c| c.graceful_shutdown(),
        &activity,
        conn.headers,
        conn.idle,
        shutdown,
    )
    .await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

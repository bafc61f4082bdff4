//! `kubesigner controller`'s wiring: the kube-rs client, the token key and the issuance core
//! (built as `serve` builds them), the store, the Lease elector and the reconciler; systemd
//! readiness; the audit checkpoints; stop on SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::watch;

use crate::app::keys::Keys;
use crate::app::lifecycle;
use crate::config::Config;
use crate::config::ControllerMode;
use crate::controller::active::Member;
use crate::controller::approval::TokenBindings;
use crate::controller::claim::Active;
use crate::controller::config::{member_identity_from, parse_signers};
use crate::controller::election::signing_window;
use crate::controller::lease::{Elector, LeaseSettings};
use crate::controller::members::{MEMBER_LABEL, View, member_lease_name};
use crate::controller::{
    Controller, ControllerConfigError, HealthFn, Leadership, Reconciler, Timing,
};
use crate::core::{Core, build_core, build_issuer};
use crate::exit;
use crate::signer::TokenSigner;
use crate::store::Store;

/// Why the controller cannot start (all before any network work, except `Connect`).
#[derive(Debug, thiserror::Error)]
pub enum ControllerStartError {
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// `[controller]` settings.
    #[error("[controller]: {0}")]
    Controller(#[from] ControllerConfigError),
    /// The kubeconfig does not load.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why (kube's message; no credentials in it).
        message: String,
    },
    /// Per-signer CAs are not supported in controller mode yet.
    #[error("[ca.signers] is not supported by `kubesigner controller`")]
    PerSignerCa,
    /// The issuance core (CA, approval policy, node inventory).
    #[error(transparent)]
    Core(#[from] crate::core::CoreBuildError),
    /// The token.
    #[error("signer: {0}")]
    Signer(#[from] crate::signer::SignerError),
    /// The local store.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The metrics address cannot be bound.
    #[error("metrics address {addr}: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A blocking start-up task failed.
    #[error("start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl ControllerStartError {
    /// The process exit code (sysexits) for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ControllerStartError::Signer(e) => e.exit_code(),
            ControllerStartError::Store(_) => exit::UNAVAILABLE,
            ControllerStartError::Join(_) => exit::SOFTWARE,
            ControllerStartError::Metrics { .. } => exit::UNAVAILABLE,
            _ => exit::USAGE,
        }
    }
}

/// What is checked before the runtime starts.
pub struct Prepared {
    /// The configuration, flags applied and checked.
    pub cfg: Config,
    /// The controller's kubeconfig, parsed.
    pub kubeconfig: Kubeconfig,
}

/// Runs the controller until SIGTERM / SIGINT; returns the exit code.
pub fn run(prepared: Prepared) -> i32 {
    let runtime = match lifecycle::module_runtime(&prepared.cfg.signer.environment) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let r = runtime.block_on(run_controller(prepared));
    runtime.shutdown_timeout(lifecycle::TOKEN_CLOSE_GRACE);
    match r {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "controller failed");
            e.exit_code()
        }
    }
}

fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn default_identity() -> String {
    format!("{}_{}", host_name(), std::process::id())
}

/// The kube-rs client from the parsed kubeconfig (no network yet).
async fn kube_client(
    kubeconfig: Kubeconfig,
    path: PathBuf,
) -> Result<kube::Client, ControllerStartError> {
    let bad = |e: &dyn std::fmt::Display| ControllerStartError::Kubeconfig {
        path: path.clone(),
        message: e.to_string(),
    };
    let cfg = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| bad(&e))?;
    kube::Client::try_from(cfg).map_err(|e| bad(&e))
}

/// The token key and the issuance core over it (built as `serve` builds it).
async fn core(cfg: &Config) -> Result<(Arc<TokenSigner>, Arc<Core>), ControllerStartError> {
    let keys = Keys::open(cfg).await??;
    let ready = keys.ready();
    let (issuer, _roots) = build_issuer(cfg, keys.main.clone(), keys.per_signer_keys())?;
    let core = build_core(cfg, issuer, ready)?;
    Ok((keys.main, core))
}

async fn run_controller(p: Prepared) -> Result<(), ControllerStartError> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let Prepared { cfg, kubeconfig } = p;
    let c = cfg.controller.clone();
    let client = kube_client(kubeconfig, c.kubeconfig.clone().unwrap_or_default()).await?;
    let (signer, core) = core(&cfg).await?;
    let store = {
        let d = cfg.data_dir.clone();
        tokio::task::spawn_blocking(move || Store::open(&d)).await??
    };
    let active = c.mode == ControllerMode::ActiveActive;
    let identity = c.identity.clone().unwrap_or_else(|| {
        if active {
            member_identity_from(&host_name(), std::process::id())
        } else {
            default_identity()
        }
    });
    let (tx, rx) = watch::channel(Leadership::Follower);
    let (view_tx, view_rx) = watch::channel(View::outside());
    let reconciler = Reconciler {
        csrs: kube::Api::all(client.clone()),
        signers: parse_signers(&c.signers)?,
        approve: c.approve,
        core,
        store,
        bindings: Arc::new(TokenBindings::new(&c.bootstrap_token_nodes)?),
        identity: identity.clone(),
        leadership: rx,
        active: active.then(|| Active {
            view: view_rx,
            stale_after: c.lease_duration,
        }),
    };
    let settings = LeaseSettings {
        name: if active {
            member_lease_name(&c.lease_name, &identity)
        } else {
            c.lease_name.clone()
        },
        namespace: c.lease_namespace().to_owned(),
        identity: identity.clone(),
        lease_duration: c.lease_duration,
        labels: if active {
            [(MEMBER_LABEL.to_owned(), c.lease_name.clone())].into()
        } else {
            Default::default()
        },
    };
    // The local audit log gets the same signed checkpoints as `serve`'s (audit key in the token).
    let checkpoints = crate::audit::checkpoint::spawn(
        reconciler.store.clone(),
        Arc::clone(&signer),
        cfg.audit.clone(),
    );
    // The node inventory's file is polled; SIGHUP keeps its default here.
    let handles = crate::reload::ReloadHandles {
        core: Arc::clone(&reconciler.core),
        authn: None,
        client_trust: None,
    };
    let reload = crate::reload::spawn(handles, cfg.clone(), None);
    let health: HealthFn = Arc::new(move || signer.ready());
    let timing = Timing {
        retry_period: c.retry_period,
        renew_deadline: c.renew_deadline,
        signing_window: signing_window(c.lease_duration, c.renew_deadline),
    };
    let metrics = match c.metrics_address {
        Some(addr) => Some(
            crate::app::metrics_listener::spawn(addr, Arc::clone(&health))
                .await
                .map_err(|source| ControllerStartError::Metrics { addr, source })?,
        ),
        None => None,
    };
    tracing::info!(%identity, lease = %format!("{}/{}", c.lease_namespace(), settings.name),
        mode = c.mode.as_str(), approve = c.approve, "controller started");
    lifecycle::notify_ready();
    let elector = Elector::new(client, settings);
    if active {
        Member::new(
            elector,
            c.lease_name.clone(),
            reconciler,
            (tx, view_tx),
            health,
            timing,
        )
        .run(lifecycle::shutdown_signal())
        .await;
    } else {
        Controller::new(elector, reconciler, tx, health, timing)
            .run(lifecycle::shutdown_signal())
            .await;
    }
    lifecycle::notify_stopping();
    if let Some(m) = metrics {
        m.abort();
    }
    reload.abort();
    checkpoints.finish().await;
    Ok(())
}

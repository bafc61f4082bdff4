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
use crate::controller::approval::TokenBindings;
use crate::controller::config::parse_signers;
use crate::controller::election::signing_window;
use crate::controller::lease::{Elector, LeaseSettings};
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

fn default_identity() -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{host}_{}", std::process::id())
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
    let identity = c.identity.clone().unwrap_or_else(default_identity);
    let (tx, rx) = watch::channel(Leadership::Follower);
    let reconciler = Reconciler {
        csrs: kube::Api::all(client.clone()),
        signers: parse_signers(&c.signers)?,
        approve: c.approve,
        core,
        store,
        bindings: Arc::new(TokenBindings::new(&c.bootstrap_token_nodes)?),
        identity: identity.clone(),
        leadership: rx,
    };
    let settings = LeaseSettings {
        name: c.lease_name.clone(),
        namespace: c.lease_namespace.clone(),
        identity: identity.clone(),
        lease_duration: c.lease_duration,
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
    tracing::info!(%identity, lease = %format!("{}/{}", c.lease_namespace, c.lease_name),
        approve = c.approve, "controller started");
    lifecycle::notify_ready();
    Controller::new(
        Elector::new(client, settings),
        reconciler,
        tx,
        health,
        timing,
    )
    .run(lifecycle::shutdown_signal())
    .await;
    lifecycle::notify_stopping();
    reload.abort();
    checkpoints.finish().await;
    Ok(())
}

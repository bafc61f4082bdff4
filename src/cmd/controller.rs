//! `kubesigner controller`: the external signer behind a real kube-apiserver. Reads the same
//! configuration file as `serve` (data dir, `[signer]`, `[ca]`, `[auth]`, `[issuance]`) plus
//! `[controller]`; flags override `[controller]` keys. Bad configuration or kubeconfig exits
//! 64 before any network work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::watch;

use crate::cmd::{lifecycle, serve};
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
use crate::signer::{Pkcs11Uri, SignKey, TokenSigner, UriOrigin};
use crate::store::Store;

/// How long exit waits for calls still inside the token.
const TOKEN_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Arguments of `kubesigner controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// The configuration file (TOML): data dir, `[signer]`, `[ca]`, `[issuance]`,
    /// `[controller]`.
    #[arg(long)]
    pub config: PathBuf,
    /// Kubeconfig of the controller's ServiceAccount (`[controller] kubeconfig`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Signer names to serve, comma-separated, short or full (`[controller] signers`).
    #[arg(long, value_delimiter = ',')]
    pub signers: Vec<String>,
    /// Approve by policy through `/approval` (`[controller] approve`).
    #[arg(long)]
    pub approve: bool,
    /// Run even as root.
    #[arg(long)]
    pub allow_root: bool,
    /// Leader-election Lease name (`[controller] lease_name`).
    #[arg(long)]
    pub lease_name: Option<String>,
    /// Lease namespace (`[controller] lease_namespace`).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// Lease duration, e.g. `15s` (`[controller] lease_duration`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub lease_duration: Option<Duration>,
    /// Renew deadline, e.g. `10s` (`[controller] renew_deadline`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub renew_deadline: Option<Duration>,
    /// Retry period, e.g. `2s` (`[controller] retry_period`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub retry_period: Option<Duration>,
    /// Holder identity (`[controller] identity`; default host name and process id).
    #[arg(long)]
    pub identity: Option<String>,
}

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
    fn exit_code(&self) -> i32 {
        match self {
            ControllerStartError::Signer(e) => e.exit_code(),
            ControllerStartError::Store(_) => exit::UNAVAILABLE,
            ControllerStartError::Join(_) => exit::SOFTWARE,
            _ => exit::USAGE,
        }
    }
}

/// What is checked before the runtime starts.
struct Prepared {
    cfg: Config,
    kubeconfig: Kubeconfig,
}

impl ControllerArgs {
    fn apply(self, cfg: &mut Config) {
        let c = &mut cfg.controller;
        if let Some(k) = self.kubeconfig {
            c.kubeconfig = Some(k);
        }
        if !self.signers.is_empty() {
            c.signers = self.signers;
        }
        c.approve |= self.approve;
        if let Some(v) = self.lease_name {
            c.lease_name = v;
        }
        if let Some(v) = self.lease_namespace {
            c.lease_namespace = v;
        }
        if let Some(v) = self.lease_duration {
            c.lease_duration = v;
        }
        if let Some(v) = self.renew_deadline {
            c.renew_deadline = v;
        }
        if let Some(v) = self.retry_period {
            c.retry_period = v;
        }
        if let Some(v) = self.identity {
            c.identity = Some(v);
        }
    }

    fn prepare(self) -> Result<Prepared, ControllerStartError> {
        let mut cfg = serve::load_config(&self.config)?;
        self.apply(&mut cfg);
        cfg.controller.check()?;
        if !cfg.ca.signers.is_empty() {
            return Err(ControllerStartError::PerSignerCa);
        }
        TokenBindings::new(&cfg.controller.bootstrap_token_nodes)?;
        let path = cfg
            .controller
            .kubeconfig
            .clone()
            .ok_or(ControllerConfigError::NoKubeconfig)?;
        let kubeconfig =
            Kubeconfig::read_from(&path).map_err(|e| ControllerStartError::Kubeconfig {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(Prepared { cfg, kubeconfig })
    }

    /// Runs until SIGTERM / SIGINT; returns the exit code.
    pub fn run(self) -> i32 {
        if let Err(e) = lifecycle::check_not_root(self.allow_root) {
            tracing::error!(error = %e, "refusing to start");
            return exit::USAGE;
        }
        let prepared = match self.prepare() {
            Ok(p) => p,
            Err(e) => {
                let error = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                tracing::error!(%error, "bad configuration");
                return e.exit_code();
            }
        };
        let runtime = match lifecycle::module_runtime(&prepared.cfg.signer.environment) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let r = runtime.block_on(run_controller(prepared));
        runtime.shutdown_timeout(TOKEN_CLOSE_GRACE);
        match r {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "controller failed");
                e.exit_code()
            }
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
    let settings = crate::signer::Settings::from(&cfg.signer);
    let key_uri = Pkcs11Uri::parse(&cfg.signer.key, UriOrigin::ConfigFile)
        .map_err(crate::signer::SignerError::from)?;
    let signer =
        tokio::task::spawn_blocking(move || TokenSigner::open(&key_uri, settings)).await??;
    let key = Arc::clone(&signer) as Arc<dyn SignKey>;
    let (issuer, _roots) = build_issuer(cfg, key, BTreeMap::new())?;
    let ready = Arc::clone(&signer);
    // The inventory reload task lives as long as the runtime (the process).
    let (core, _reload) = build_core(cfg, issuer, Arc::new(move || ready.ready()))?;
    Ok((signer, core))
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
    .run(serve::shutdown_signal())
    .await;
    lifecycle::notify_stopping();
    checkpoints.finish().await;
    Ok(())
}

//! `kubesigner controller`: the external signer behind a real kube-apiserver. Reads the same
//! configuration file as `serve` (data dir, `[signer]`, `[ca]`, `[auth]`, `[issuance]`) plus
//! `[controller]`; flags override `[controller]` keys. Bad configuration or kubeconfig exits
//! 64 before any network work.

use std::path::PathBuf;
use std::time::Duration;

use kube::config::Kubeconfig;

use crate::app::controller::{ControllerStartError, Prepared};
use crate::app::lifecycle;
use crate::config::{Config, ControllerMode};
use crate::controller::ControllerConfigError;
use crate::controller::approval::TokenBindings;
use crate::exit;

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
    /// How replicas share the work: `leader` (one Lease, one signer; the default) or
    /// `active-active` (every replica signs the CSRs it owns) (`[controller] mode`).
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<ControllerMode>,
    /// Serve Prometheus metrics over plain HTTP here, e.g. `127.0.0.1:9464`
    /// (`[controller] metrics_address`).
    #[arg(long)]
    pub metrics_address: Option<std::net::SocketAddr>,
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

fn parse_mode(s: &str) -> Result<ControllerMode, String> {
    [ControllerMode::Leader, ControllerMode::ActiveActive]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| format!("{s:?}: expected `leader` or `active-active`"))
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
        if let Some(m) = self.mode {
            c.mode = m;
        }
        if let Some(a) = self.metrics_address {
            c.metrics_address = Some(a);
        }
        if let Some(v) = self.lease_name {
            c.lease_name = v;
        }
        if let Some(v) = self.lease_namespace {
            c.lease_namespace = Some(v);
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
        let mut cfg = crate::config::Config::load(&self.config)?;
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
        match self.prepare() {
            Ok(p) => crate::app::controller::run(p),
            Err(e) => {
                let error = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                tracing::error!(%error, "bad configuration");
                e.exit_code()
            }
        }
    }
}

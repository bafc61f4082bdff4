//! `kubesigner serve`: the HTTPS appliance. Configuration from `--config` (TOML), with the
//! seeds' flags overriding it; without `--config` the flags alone must name the data dir, the
//! CA certificate and the token key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::api::edge::server::{ServeError, Server};
use crate::cmd::lifecycle;
use crate::config::{Config, ConfigError};
use crate::exit;
use crate::signer::{Pkcs11Uri, UriOrigin};

/// How long exit waits for calls still inside the token after the server has stopped (a hung
/// token must not keep the process from exiting; systemd's stop timeout is longer).
const TOKEN_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Arguments of `kubesigner serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML); flags below override its keys.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory for durable state (`data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address and port to listen on (`[server] listen`, default 127.0.0.1:6443).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Static token file, CSV `token,user,uid,"group1,group2"` (`[auth] token_auth_file`).
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Extra client CA bundle (repeatable; `[auth] client_ca_files`).
    #[arg(long = "client-ca-file")]
    pub client_ca_files: Vec<PathBuf>,
    /// The CA certificate (PEM) for the token key (`[ca] cert_file`).
    #[arg(long)]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// The CA key as a `pkcs11:` URI (`[signer] key`); no PIN value on the command line.
    #[arg(long)]
    pub cluster_signing_key: Option<String>,
    /// Serving certificate chain (PEM; `[server] tls_cert_file`).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM; `[server] tls_private_key_file`).
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Auto-approve kubelet client CSRs from this group (repeatable;
    /// `[issuance] auto_approve_groups`).
    #[arg(long = "auto-approve-group")]
    pub auto_approve_groups: Vec<String>,
    /// The seeds' name for `--auto-approve-group` (deprecated alias; logged as a warning).
    #[arg(long = "insecure-experimental-approve-all-kubelet-csrs-for-group")]
    pub legacy_auto_approve_groups: Vec<String>,
    /// Run even as root (the appliance belongs under its own user; see systemd/).
    #[arg(long)]
    pub allow_root: bool,
}

/// Why `serve` could not assemble its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServeConfigError {
    /// The file could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Without `--config`, a required flag is missing.
    #[error("without --config, --{0} is required")]
    Missing(&'static str),
    /// The flags do not make a valid configuration.
    #[error("invalid flags: {message}")]
    Flags {
        /// The parser's message.
        message: String,
    },
    /// The `--cluster-signing-key` URI is invalid (or carries a PIN value).
    #[error("--cluster-signing-key: {0}")]
    Key(#[from] crate::signer::UriError),
}

fn rebase(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

/// Loads a configuration file and makes its relative paths relative to the file's directory.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let mut cfg = Config::load(path)?;
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    rebase(&base, &mut cfg.data_dir);
    rebase(&base, &mut cfg.ca.cert_file);
    for sc in cfg.ca.signers.values_mut() {
        rebase(&base, &mut sc.cert_file);
    }
    for p in cfg
        .server
        .tls_cert_file
        .iter_mut()
        .chain(cfg.server.tls_private_key_file.iter_mut())
    {
        rebase(&base, p);
    }
    for p in cfg
        .auth
        .token_auth_file
        .iter_mut()
        .chain(cfg.auth.client_ca_files.iter_mut())
        .chain(cfg.auth.rbac_manifests.iter_mut())
    {
        rebase(&base, p);
    }
    if let Some(p) = cfg.issuance.node_inventory.as_mut() {
        rebase(&base, p);
    }
    if let Some(p) = cfg.audit.public_key_file.as_mut() {
        rebase(&base, p);
    }
    Ok(cfg)
}

/// A configuration from the three required flags; every other key takes its default.
fn minimal_config(
    data_dir: &Path,
    key: &str,
    cert_file: &Path,
) -> Result<Config, ServeConfigError> {
    let mut signer = toml::Table::new();
    signer.insert("key".to_owned(), key.into());
    let mut ca = toml::Table::new();
    ca.insert(
        "cert_file".to_owned(),
        cert_file.to_string_lossy().as_ref().into(),
    );
    let mut doc = toml::Table::new();
    doc.insert(
        "data_dir".to_owned(),
        data_dir.to_string_lossy().as_ref().into(),
    );
    doc.insert("signer".to_owned(), signer.into());
    doc.insert("ca".to_owned(), ca.into());
    Config::parse(&doc.to_string()).map_err(|message| ServeConfigError::Flags { message })
}

impl ServeArgs {
    /// `serve --config PATH` and nothing else (what `kubesigner dev` runs).
    pub fn with_config(path: PathBuf) -> ServeArgs {
        ServeArgs {
            config: Some(path),
            data_dir: None,
            listen: None,
            token_auth_file: None,
            client_ca_files: Vec::new(),
            cluster_signing_cert_file: None,
            cluster_signing_key: None,
            tls_cert_file: None,
            tls_private_key_file: None,
            auto_approve_groups: Vec::new(),
            legacy_auto_approve_groups: Vec::new(),
            // `dev` is a local sandbox and runs as whoever starts it.
            allow_root: true,
        }
    }

    /// The configuration: the file (if any) with the flags applied.
    pub fn config(self) -> Result<Config, ServeConfigError> {
        if let Some(key) = &self.cluster_signing_key {
            Pkcs11Uri::parse(key, UriOrigin::CommandLine)?;
        }
        let mut cfg = match &self.config {
            Some(path) => load_config(path)?,
            None => minimal_config(
                self.data_dir
                    .as_deref()
                    .ok_or(ServeConfigError::Missing("data-dir"))?,
                self.cluster_signing_key
                    .as_deref()
                    .ok_or(ServeConfigError::Missing("cluster-signing-key"))?,
                self.cluster_signing_cert_file
                    .as_deref()
                    .ok_or(ServeConfigError::Missing("cluster-signing-cert-file"))?,
            )?,
        };
        self.apply(&mut cfg);
        Ok(cfg)
    }

    fn apply(self, cfg: &mut Config) {
        if let Some(v) = self.data_dir {
            cfg.data_dir = v;
        }
        if let Some(v) = self.listen {
            cfg.server.listen = v;
        }
        if let Some(v) = self.token_auth_file {
            cfg.auth.token_auth_file = Some(v);
        }
        cfg.auth.client_ca_files.extend(self.client_ca_files);
        if let Some(v) = self.cluster_signing_cert_file {
            cfg.ca.cert_file = v;
        }
        if let Some(v) = self.cluster_signing_key {
            cfg.signer.key = v;
        }
        if let Some(v) = self.tls_cert_file {
            cfg.server.tls_cert_file = Some(v);
        }
        if let Some(v) = self.tls_private_key_file {
            cfg.server.tls_private_key_file = Some(v);
        }
        for g in &self.legacy_auto_approve_groups {
            tracing::warn!(group = %g, "--insecure-experimental-approve-all-kubelet-csrs-for-group is an alias of --auto-approve-group: every kubelet client CSR from this group is approved");
        }
        cfg.issuance
            .auto_approve_groups
            .extend(self.auto_approve_groups);
        cfg.issuance
            .auto_approve_groups
            .extend(self.legacy_auto_approve_groups);
    }

    /// Runs the server until SIGTERM / SIGINT; returns the exit code.
    pub fn run(self) -> i32 {
        if let Err(e) = lifecycle::check_not_root(self.allow_root) {
            tracing::error!(error = %e, "refusing to start");
            return exit::USAGE;
        }
        // SIGHUP reads the configuration again the same way (file, then these flags).
        let again = self.clone();
        let cfg = match self.config() {
            Ok(c) => c,
            Err(e) => {
                // One log line (TOML errors span several, with a caret diagram).
                let error = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                tracing::error!(%error, "bad configuration");
                return exit::USAGE;
            }
        };
        // Held for the process's lifetime: `kubesigner restore` refuses while it is taken.
        let _store_lock = match crate::cmd::backup::lock_data_dir(&cfg.data_dir) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot lock the data dir");
                return exit::UNAVAILABLE;
            }
        };
        let runtime = match lifecycle::module_runtime(&cfg.signer.environment) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let load = move || again.clone().config().map_err(|e| e.to_string());
        let served = runtime.block_on(serve_notified(cfg, load));
        // Drops the remaining tasks and with them the token signer (sessions closed, logout,
        // C_Finalize); a call stuck in a hung token is not waited for beyond the grace.
        runtime.shutdown_timeout(TOKEN_CLOSE_GRACE);
        match served {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "serve failed");
                ServeError::exit_code(&e)
            }
        }
    }
}

/// Starts the server, tells systemd it is ready, pings the watchdog while healthy, and stops
/// on SIGTERM / SIGINT.
async fn serve_notified(
    cfg: Config,
    load: impl Fn() -> Result<Config, String> + Send + Sync + 'static,
) -> Result<(), ServeError> {
    let server = Server::start(&cfg).await?;
    let reload = crate::reload::spawn_on_sighup(server.reload_handles().clone(), cfg.clone(), load);
    lifecycle::notify_ready();
    let watchdog = tokio::spawn(lifecycle::watchdog(
        server.api().clone(),
        cfg.data_dir.clone(),
    ));
    shutdown_signal().await;
    tracing::info!("shutting down");
    lifecycle::notify_stopping();
    watchdog.abort();
    if let Some(r) = reload {
        r.abort();
    }
    server.shutdown().await;
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests;

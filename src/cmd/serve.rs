//! `kubesigner serve`: the HTTPS appliance. Configuration from `--config` (TOML), with the
//! seeds' flags overriding it; without `--config` the flags alone must name the data dir, the
//! CA certificate and the token key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::app::lifecycle;
use crate::config::{Config, ConfigError};
use crate::exit;
use crate::signer::{Pkcs11Uri, UriOrigin};

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
    #[error("invalid flags: {0}")]
    Flags(#[source] toml::de::Error),
    /// The `--cluster-signing-key` URI is invalid (or carries a PIN value).
    #[error("--cluster-signing-key: {0}")]
    Key(#[from] crate::signer::UriError),
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
    Config::parse(&doc.to_string()).map_err(ServeConfigError::Flags)
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
            Some(path) => Config::load(path)?,
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
        let load = move || again.clone().config().map_err(Into::into);
        crate::app::serve::run(cfg, load)
    }
}

#[cfg(test)]
mod tests;

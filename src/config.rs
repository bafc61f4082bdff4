//! Typed configuration (TOML). Unknown keys are rejected; a bad file exits 64 before anything
//! binds or logs in. Every key is documented in `systemd/kubesigner.example.toml`.
//!
//! A leaf: this module imports nothing else of the crate. Each section is plain data (its keys,
//! defaults and bounds, one file per section); the part that uses a section converts it
//! (`signer::Settings::from`, `controller::check`, ...).

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod audit;
pub mod auth;
pub mod controller;
pub mod duration;
pub mod gc;
pub mod issuance;
pub mod limits;
pub mod server;
pub mod signer;

pub use audit::AuditConfig;
pub use auth::AuthConfig;
pub use controller::{ControllerConfig, ControllerMode, NodePatterns};
pub use gc::GcConfig;
pub use issuance::IssuanceConfig;
pub use limits::LimitsConfig;
pub use server::{LogFormat, ServerConfig};
pub use signer::{CaConfig, SignerCaConfig, SignerConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for durable state: the SQLite store (CSRs, bootstrap-token hashes, node states,
    /// the audit chain). Relative paths are relative to the config file's directory.
    pub data_dir: PathBuf,
    /// The PKCS#11 token holding the CA key.
    pub signer: SignerConfig,
    /// The CA certificate(s) that go with the token key.
    pub ca: CaConfig,
    /// Who may authenticate and who is an administrator.
    #[serde(default)]
    pub auth: AuthConfig,
    /// What is issued and auto-approved.
    #[serde(default)]
    pub issuance: IssuanceConfig,
    /// The HTTPS API: listen address, serving certificate, bounds.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[gc]`: CSR garbage collection ages (defaults: upstream's csrcleaner).
    #[serde(default)]
    pub gc: GcConfig,
    /// `[limits]`: per-node and per-requester CSR-create limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[audit]`: signed checkpoints of the audit chain.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[controller]`: `kubesigner controller` (external signer, leader election).
    #[serde(default)]
    pub controller: ControllerConfig,
}

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type, ...).
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error (names the key and line).
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads and parses `path`, and makes its relative paths relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        cfg.rebase(path);
        Ok(cfg)
    }

    /// Joins every relative path of the file to the directory of `path`.
    fn rebase(&mut self, path: &Path) {
        let cfg = self;
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
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }
}

fn rebase(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

#[cfg(test)]
mod tests;

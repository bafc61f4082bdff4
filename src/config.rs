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
pub use controller::{ControllerConfig, NodePatterns};
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
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
}

impl Config {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;

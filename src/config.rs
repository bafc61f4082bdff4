//! Typed configuration (TOML). Unknown keys are rejected; a bad file exits 64 before anything
//! binds or logs in. Every key is documented in `systemd/kubesigner.example.toml`.
//!
//! Sections are owned by the layer that uses them: `[signer]` by `src/signer/`, `[ca]` by
//! `src/issue/`, the rest by the API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    /// `[gc]`: CSR garbage collection ages (defaults: upstream's csrcleaner).
    #[serde(default)]
    pub gc: crate::compat::gc::GcConfig,
    /// `[limits]`: per-node and per-requester CSR-create limits.
    #[serde(default)]
    pub limits: crate::compat::limits::LimitsConfig,
}

/// `[signer]`: where the CA key lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerConfig {
    /// RFC 7512 URI of the CA key, e.g.
    /// `pkcs11:token=kubesigner-dev;object=ca?module-path=...&pin-source=file:...`.
    pub key: String,
    /// Environment the PKCS#11 module reads when it loads (e.g. `SOFTHSM2_CONF`). Applied before
    /// the module loads, by re-executing the process with it; never set in a running process.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// How long one signing call may take before the signer is marked down.
    #[serde(default = "default_sign_timeout", with = "humantime_serde_compat")]
    pub sign_timeout: Duration,
}

/// `[ca]`: the CA certificate for the token key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// PEM CA certificate (the seeds' `--cluster-signing-cert-file`), optionally followed by
    /// the intermediates up to, not including, the root.
    pub cert_file: PathBuf,
}

/// `[auth]`: authentication inputs (the seeds' `--token-auth-file`, `--client-ca-file`) and the
/// groups and users the authorizer treats specially. Every key is optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static token file, CSV `token,user,uid,"group1,group2"` (the seeds' `--token-auth-file`).
    pub token_auth_file: Option<PathBuf>,
    /// Extra client CA bundles (the seeds' `--client-ca-file`); the appliance CA is always trusted.
    pub client_ca_files: Vec<PathBuf>,
    /// Groups whose members are administrators (read all, approve, deny, delete).
    pub admin_groups: Vec<String>,
    /// Users who are administrators.
    pub admin_users: Vec<String>,
    /// Groups whose members may create kubelet client CSRs. An entry ending in `*` matches every
    /// group with that prefix.
    pub bootstrap_groups: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_auth_file: None,
            client_ca_files: Vec::new(),
            admin_groups: vec!["system:masters".to_owned()],
            admin_users: Vec::new(),
            bootstrap_groups: vec![
                "system:bootstrappers".to_owned(),
                "system:bootstrappers:*".to_owned(),
                "system:kubelet-bootstrap".to_owned(),
            ],
        }
    }
}

fn default_sign_timeout() -> Duration {
    Duration::from_secs(5)
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

/// `humantime` durations ("5s", "24h") in serde.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

//! `[audit]`: signed checkpoints of the audit chain. The checkpointer is `audit::checkpoint`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default label of the audit key in the token.
pub const DEFAULT_KEY_LABEL: &str = "kubesigner-audit";
/// `[audit]`: signed checkpoints of the audit chain. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// A checkpoint after this many records (0 = only by time).
    pub checkpoint_every: u64,
    /// A checkpoint at least this often while records are written (0s = only by count).
    #[serde(with = "super::duration")]
    pub checkpoint_interval: Duration,
    /// Records past `checkpoint_every` that `audit verify --config` tolerates between two
    /// checkpoints before it calls one missing: the checkpointer looks once a second, so what
    /// is appended in a second at peak must fit. Default: `checkpoint_every`, at least
    /// [`DEFAULT_MIN_SLACK`].
    pub checkpoint_slack: Option<u64>,
    /// CKA_LABEL of the audit key (ECDSA P-256) in the CA key's token.
    pub key_label: String,
    /// The audit public key exported as PEM (`audit-key.pem`), for `audit verify --config`
    /// on a host without the token. Relative to the config file's directory.
    pub public_key_file: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(300),
            checkpoint_slack: None,
            key_label: DEFAULT_KEY_LABEL.to_owned(),
            public_key_file: None,
        }
    }
}

/// Smallest default `checkpoint_slack`: records appended within one checkpointer look (1 s)
/// in ordinary operation (an approval and its issuance come together).
pub const DEFAULT_MIN_SLACK: u64 = 100;

impl AuditConfig {
    /// `checkpoint_slack`, or its default.
    pub fn slack(&self) -> u64 {
        self.checkpoint_slack
            .unwrap_or(self.checkpoint_every.max(DEFAULT_MIN_SLACK))
    }
}

//! `[signer]` and `[ca]`: where the CA key lives (a PKCS#11 URI) and the CA certificates that
//! go with it. The signer's defaults and bounds are defined here, once; `signer::Settings`
//! reads them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default of `sign_timeout` (and of the signer's wait for a free session).
pub const DEFAULT_SIGN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default pool size. Two sessions saturate SoftHSM on the 2-core reference box (≈ 18k/s).
pub const DEFAULT_MAX_SESSIONS: usize = 4;
/// Default keepalive interval: below the ≈ 30 s idle timeout of YubiHSM-class devices.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Largest `max_sessions` / `max-sessions` accepted (YubiHSM 2 caps at 16 sessions, network
/// HSMs at a few dozen; more than 64 signing sessions would not help a 2-64 core host).
pub const MAX_SESSIONS_LIMIT: usize = 64;

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
    #[serde(default = "default_sign_timeout", with = "super::duration")]
    pub sign_timeout: Duration,
    /// Signing sessions in the pool when the key URI has no `max-sessions` (1 to 64).
    #[serde(default = "default_max_sessions", deserialize_with = "max_sessions")]
    pub max_sessions: usize,
    /// Interval of the keepalive call on the token while idle (vendor idle timeouts are
    /// ≈ 30 s).
    #[serde(default = "default_keepalive_interval", with = "super::duration")]
    pub keepalive_interval: Duration,
}

/// `[ca]`: the CA certificate for the token key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// PEM CA certificate (the seeds' `--cluster-signing-cert-file`), optionally followed by
    /// the intermediates up to, not including, the root.
    pub cert_file: PathBuf,
    /// A separate CA per signer name (kube-controller-manager's
    /// `--cluster-signing-<signer>-{cert,key}-file`), keyed by signer name, e.g.
    /// `[ca.signers."kubernetes.io/kubelet-serving"]`. Names not listed use the CA above.
    #[serde(default)]
    pub signers: BTreeMap<String, SignerCaConfig>,
}

/// `[ca.signers."<signer name>"]`: the CA certificate and token key for one signer name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerCaConfig {
    /// PEM CA certificate for this signer name, optionally followed by its chain.
    pub cert_file: PathBuf,
    /// RFC 7512 URI of this CA's key (may be another key in the same token).
    pub key: String,
}

fn default_sign_timeout() -> Duration {
    DEFAULT_SIGN_TIMEOUT
}

fn default_max_sessions() -> usize {
    DEFAULT_MAX_SESSIONS
}

fn default_keepalive_interval() -> Duration {
    DEFAULT_KEEPALIVE_INTERVAL
}

fn max_sessions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if (1..=MAX_SESSIONS_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!(
            "max_sessions must be from 1 to {MAX_SESSIONS_LIMIT}"
        )))
    }
}

//! `[controller]`: the external-signer mode's settings (every key optional; the
//! `kubesigner controller` flags override them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::issue::SignerName;

/// Shortest lease duration accepted: the Lease API counts whole seconds.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(1);
/// Longest lease duration accepted (an hour; client-go's default is 15 s).
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(3600);
/// Shortest retry period (renewing more than five times a second only loads the apiserver).
pub const MIN_RETRY_PERIOD: Duration = Duration::from_millis(200);

/// `[controller]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Kubeconfig of the controller's ServiceAccount (`--kubeconfig`).
    pub kubeconfig: Option<PathBuf>,
    /// Signer names this controller approves and signs, short (`kubelet-serving`) or full
    /// (`kubernetes.io/kubelet-serving`) (`--signers`).
    pub signers: Vec<String>,
    /// Run the approval policy and write `Approved` / `Denied` through `/approval`
    /// (`--approve`). Off: CSRs wait for a human or another approver.
    pub approve: bool,
    /// Name of the leader-election Lease (`--lease-name`).
    pub lease_name: String,
    /// Namespace of the Lease (`--lease-namespace`).
    pub lease_namespace: String,
    /// How long a leader's claim lasts after its last renewal (`--lease-duration`).
    #[serde(with = "humantime_serde")]
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long steps down (`--renew-deadline`).
    #[serde(with = "humantime_serde")]
    pub renew_deadline: Duration,
    /// Interval between acquire / renew attempts (`--retry-period`).
    #[serde(with = "humantime_serde")]
    pub retry_period: Duration,
    /// This replica's holder identity (`--identity`; default: host name + process id).
    pub identity: Option<String>,
    /// Bootstrap token id → node-name patterns (glob) the token may bootstrap. The binding is
    /// read from here, not from the cluster's `bootstrap-token-<id>` Secrets: reading Secrets
    /// would cost `get` on Secrets in kube-system. Tokens not listed are unbound.
    pub bootstrap_token_nodes: BTreeMap<String, NodePatterns>,
}

/// One pattern or a list of them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum NodePatterns {
    /// `"abcdef" = "node-a*"`.
    One(String),
    /// `"abcdef" = ["node-a*", "node-b"]`.
    Many(Vec<String>),
}

impl NodePatterns {
    /// The patterns as a slice.
    pub fn as_slice(&self) -> &[String] {
        match self {
            NodePatterns::One(p) => std::slice::from_ref(p),
            NodePatterns::Many(v) => v,
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            kubeconfig: None,
            signers: vec![
                "kubernetes.io/kube-apiserver-client-kubelet".to_owned(),
                "kubernetes.io/kubelet-serving".to_owned(),
            ],
            approve: false,
            lease_name: "kubesigner-controller".to_owned(),
            lease_namespace: "kube-system".to_owned(),
            // client-go's leaderelection defaults (kube-controller-manager's flags).
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            identity: None,
            bootstrap_token_nodes: BTreeMap::new(),
        }
    }
}

/// Why the `[controller]` settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum ControllerConfigError {
    /// A signer name is not one this controller can sign.
    #[error("signer {name:?} is not a kubelet signer name this controller can sign")]
    Signer {
        /// The name given.
        name: String,
    },
    /// The durations do not satisfy retry < renew deadline < lease duration.
    #[error(
        "need {min_retry:?} <= retry_period ({retry:?}) < renew_deadline ({renew:?}) < lease_duration ({lease:?}) <= {max_lease:?}"
    )]
    Durations {
        /// `retry_period`.
        retry: Duration,
        /// `renew_deadline`.
        renew: Duration,
        /// `lease_duration`.
        lease: Duration,
        /// The lower bound of `retry_period`.
        min_retry: Duration,
        /// The upper bound of `lease_duration`.
        max_lease: Duration,
    },
    /// A bootstrap token id is not `[a-z0-9]{6}`, or a pattern does not compile.
    #[error("[controller.bootstrap_token_nodes] {id:?}: {why}")]
    TokenBinding {
        /// The token id.
        id: String,
        /// Why.
        why: String,
    },
    /// The lease name, namespace or identity is empty or too long.
    #[error("{what} must be 1 to 253 characters")]
    Name {
        /// Which setting.
        what: &'static str,
    },
    /// No kubeconfig was given.
    #[error("no kubeconfig: pass --kubeconfig or set [controller] kubeconfig")]
    NoKubeconfig,
}

/// Longest Lease name / namespace / holder identity (a DNS subdomain's bound).
const MAX_NAME_LEN: usize = 253;

/// The signer names, parsed: short names get the `kubernetes.io/` prefix.
pub fn parse_signers(names: &[String]) -> Result<Vec<SignerName>, ControllerConfigError> {
    names
        .iter()
        .map(|n| {
            let full = if n.contains('/') {
                n.clone()
            } else {
                format!("kubernetes.io/{n}")
            };
            match SignerName::parse(&full) {
                Some(s @ (SignerName::KubeletClient | SignerName::KubeletServing)) => Ok(s),
                _ => Err(ControllerConfigError::Signer { name: n.clone() }),
            }
        })
        .collect()
}

impl ControllerConfig {
    /// Checks the bounds and relations of the settings.
    pub fn check(&self) -> Result<(), ControllerConfigError> {
        parse_signers(&self.signers)?;
        let (retry, renew, lease) = (self.retry_period, self.renew_deadline, self.lease_duration);
        if retry < MIN_RETRY_PERIOD
            || retry >= renew
            || renew >= lease
            || lease < MIN_LEASE_DURATION
            || lease > MAX_LEASE_DURATION
        {
            return Err(ControllerConfigError::Durations {
                retry,
                renew,
                lease,
                min_retry: MIN_RETRY_PERIOD,
                max_lease: MAX_LEASE_DURATION,
            });
        }
        for (what, v) in [
            ("lease_name", Some(&self.lease_name)),
            ("lease_namespace", Some(&self.lease_namespace)),
            ("identity", self.identity.as_ref()),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > MAX_NAME_LEN)
            {
                return Err(ControllerConfigError::Name { what });
            }
        }
        for (id, pats) in &self.bootstrap_token_nodes {
            let bad = |why: String| ControllerConfigError::TokenBinding {
                id: id.clone(),
                why,
            };
            if crate::authn::bootstrap::BootstrapTokenId::parse(id).is_none() {
                return Err(bad("not a bootstrap token id ([a-z0-9]{6})".to_owned()));
            }
            for p in pats.as_slice() {
                globset::Glob::new(p).map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// `humantime` durations ("15s", "500ms") in serde.
mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;

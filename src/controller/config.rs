//! Checks of the `[controller]` settings (the section itself is `config::controller`) and the
//! signer names they parse to.

use std::time::Duration;

use crate::config::controller::{MAX_LEASE_DURATION, MIN_LEASE_DURATION, MIN_RETRY_PERIOD};
use crate::config::{ControllerConfig, ControllerMode};
use crate::issue::SignerName;

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
    /// Active-active mode: the identity cannot be part of a Lease name.
    #[error(
        "identity {identity:?}: in active-active mode it names this replica's Lease \
         ({lease_name}-<identity>), so it must be 1 to 63 lowercase letters, digits or '-', \
         starting and ending with a letter or digit"
    )]
    MemberIdentity {
        /// The identity given.
        identity: String,
        /// `lease_name`.
        lease_name: String,
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
            ("lease_namespace", self.lease_namespace.as_ref()),
            ("identity", self.identity.as_ref()),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > MAX_NAME_LEN)
            {
                return Err(ControllerConfigError::Name { what });
            }
        }
        if self.mode == ControllerMode::ActiveActive
            && let Some(id) = &self.identity
            && !is_member_identity(id, &self.lease_name)
        {
            return Err(ControllerConfigError::MemberIdentity {
                identity: id.clone(),
                lease_name: self.lease_name.clone(),
            });
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

/// Longest DNS label (RFC 1123), the bound of a member identity.
const MAX_LABEL_LEN: usize = 63;

/// True when `id` is a DNS label and `<lease_name>-<id>` is a valid Lease name length.
pub fn is_member_identity(id: &str, lease_name: &str) -> bool {
    let b = id.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    let alnum = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && b.iter().all(ok_char)
        && alnum(b.first())
        && alnum(b.last())
        && lease_name.len() + 1 + b.len() <= MAX_NAME_LEN
}

/// A member identity made from a host name and process id: lowercased, every other
/// character `-`, cut to a DNS label.
pub fn member_identity_from(host: &str, pid: u32) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let pid = pid.to_string();
    let room = MAX_LABEL_LEN - pid.len() - 1;
    let host = host.trim_matches('-');
    let host: String = host.chars().take(room).collect();
    let host = host.trim_end_matches('-');
    if host.is_empty() {
        format!("r-{pid}")
    } else {
        format!("{host}-{pid}")
    }
}

#[cfg(test)]
mod tests;

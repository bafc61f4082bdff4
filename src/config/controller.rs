//! `[controller]`: the external-signer mode's settings (every key optional; the
//! `kubesigner controller` flags override them). Their checks are `controller::config::check`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Shortest lease duration accepted: the Lease API counts whole seconds.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(1);
/// Longest lease duration accepted (an hour; client-go's default is 15 s).
pub const MAX_LEASE_DURATION: Duration = Duration::from_secs(3600);
/// Shortest retry period (renewing more than five times a second only loads the apiserver).
pub const MIN_RETRY_PERIOD: Duration = Duration::from_millis(200);

/// How replicas share the work.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ControllerMode {
    /// One Lease; its holder alone approves and signs (the default).
    #[default]
    Leader,
    /// Every replica holds its own Lease (`<lease_name>-<identity>`); each CSR is owned by one
    /// live member (rendezvous hashing) and claimed with a conditional write before it is
    /// signed.
    ActiveActive,
}

impl ControllerMode {
    /// The name used in the configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ControllerMode::Leader => "leader",
            ControllerMode::ActiveActive => "active-active",
        }
    }
}

/// `[controller]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Kubeconfig of the controller's ServiceAccount (`--kubeconfig`).
    pub kubeconfig: Option<PathBuf>,
    /// Signer names this controller approves and signs, short (`kubelet-serving`) or full
    /// (`kubernetes.io/kubelet-serving`) (`--signers`).
    pub signers: Vec<String>,
    /// How replicas share the work (`--mode`): `leader` or `active-active`.
    pub mode: ControllerMode,
    /// Serve Prometheus metrics over plain HTTP on this address (`--metrics-address`; off
    /// when absent). Counts only, no CSR contents (as `serve`'s `/metrics`).
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Run the approval policy and write `Approved` / `Denied` through `/approval`
    /// (`--approve`). Off: CSRs wait for a human or another approver.
    pub approve: bool,
    /// Name of the leader-election Lease (`--lease-name`); in active-active mode the prefix of
    /// the members' Leases (`<lease_name>-<identity>`) and the value of their
    /// `kubesigner.io/member-of` label.
    pub lease_name: String,
    /// Namespace of the Lease(s) (`--lease-namespace`). Default: `kube-system` in leader
    /// mode (beside kube-controller-manager's), `kubesigner` in active-active mode (the member
    /// Leases' names are not known in advance, so RBAC cannot name them: they get a namespace
    /// of their own, where the controller may touch no one else's Lease).
    pub lease_namespace: Option<String>,
    /// How long a leader's claim lasts after its last renewal (`--lease-duration`).
    #[serde(with = "super::duration")]
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long steps down (`--renew-deadline`).
    #[serde(with = "super::duration")]
    pub renew_deadline: Duration,
    /// Interval between acquire / renew attempts (`--retry-period`).
    #[serde(with = "super::duration")]
    pub retry_period: Duration,
    /// This replica's holder identity (`--identity`; default: host name + process id).
    pub identity: Option<String>,
    /// Bootstrap token id → node-name patterns (glob) the token may bootstrap. The binding is
    /// read from here, not from the cluster's `bootstrap-token-<id>` Secrets: reading Secrets
    /// would cost `get` on Secrets in kube-system. Tokens not listed are unbound.
    pub bootstrap_token_nodes: BTreeMap<String, NodePatterns>,
}

impl ControllerConfig {
    /// The Lease namespace in force (see [`ControllerConfig::lease_namespace`]).
    pub fn lease_namespace(&self) -> &str {
        match (&self.lease_namespace, self.mode) {
            (Some(ns), _) => ns,
            (None, ControllerMode::Leader) => "kube-system",
            (None, ControllerMode::ActiveActive) => "kubesigner",
        }
    }
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
            mode: ControllerMode::Leader,
            metrics_address: None,
            approve: false,
            lease_name: "kubesigner-controller".to_owned(),
            lease_namespace: None,
            // client-go's leaderelection defaults (kube-controller-manager's flags).
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            identity: None,
            bootstrap_token_nodes: BTreeMap::new(),
        }
    }
}

//! `[issuance]`: signer names served, certificate lifetime, auto-approved groups, inventory.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[issuance]`: which signer names are served, certificate lifetime, the auto-approved groups
/// and the node inventory. Every key has a default, so the section may be left out. (Admin and
/// bootstrap groups are `[auth]`'s.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuanceConfig {
    /// Longest certificate lifetime (the seeds' `--cluster-signing-duration`; default 8760h).
    #[serde(with = "super::duration")]
    pub max_ttl: Duration,
    /// Signer names served. Default: the two kubelet signers; add
    /// `kubernetes.io/kube-apiserver-client` to enable it (admin approval only).
    pub signers: Vec<String>,
    /// Groups whose bootstrap client CSRs are auto-approved (glob patterns). A static-token
    /// group is auto-approved only when listed here (the seeds'
    /// `--insecure-experimental-approve-all-kubelet-csrs-for-group`).
    pub auto_approve_groups: Vec<String>,
    /// Node inventory (TOML: node name → addresses, CIDRs, DNS names) for serving-certificate
    /// SAN checks; without it serving CSRs wait for an admin.
    pub node_inventory: Option<PathBuf>,
    /// Trust on first use: record the peer IP of the connection that creates a node's first
    /// bootstrap client CSR and count it as an inventory address of that node (off by
    /// default: a stolen bootstrap token used first fixes the attacker's address, and behind
    /// NAT or a proxy every node shares one address).
    pub record_first_bootstrap_address: bool,
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        IssuanceConfig {
            max_ttl: Duration::from_secs(8760 * 3600),
            signers: s(&[
                "kubernetes.io/kube-apiserver-client-kubelet",
                "kubernetes.io/kubelet-serving",
            ]),
            auto_approve_groups: s(&["system:bootstrappers", "system:bootstrappers:*"]),
            node_inventory: None,
            record_first_bootstrap_address: false,
        }
    }
}

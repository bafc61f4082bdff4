//! `[auth]`: who may authenticate and who is an administrator.

use std::path::PathBuf;

use serde::Deserialize;

/// `[auth]`: authentication inputs (the seeds' `--token-auth-file`, `--client-ca-file`) and the
/// groups and users the authorizer treats specially. Every key is optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static token file, CSV `token,user,uid,"group1,group2"` (the seeds' `--token-auth-file`).
    pub token_auth_file: Option<PathBuf>,
    /// Extra client CA bundles (the seeds' `--client-ca-file`); the appliance CA is always trusted.
    pub client_ca_files: Vec<PathBuf>,
    /// Groups whose members are administrators (read all, approve, deny, delete);
    /// `kube-apiserver-client` CSRs naming one of them (or `system:masters`) in O are refused at
    /// create.
    pub admin_groups: Vec<String>,
    /// Users who are administrators.
    pub admin_users: Vec<String>,
    /// Groups whose members may create kubelet client CSRs (bootstrap requesters). An entry
    /// ending in `*` matches every group with that prefix.
    pub bootstrap_groups: Vec<String>,
    /// Kubernetes RBAC manifests (multi-document YAML: ClusterRole, ClusterRoleBinding, Role,
    /// RoleBinding) granting what the built-in matrix does not. Used in external-signing mode
    /// only; an invalid manifest is a configuration error.
    pub rbac_manifests: Vec<PathBuf>,
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
            rbac_manifests: Vec::new(),
        }
    }
}

//! Typed names at the edge: signer names the appliance serves, and node names.

use std::fmt;

/// Named bound: a DNS-1123 subdomain is at most 253 characters (Kubernetes node names).
pub const MAX_NODE_NAME_LEN: usize = 253;
/// Named bound: the API's maximum signerName length, the one definition (reference §1.3;
/// upstream: 253 domain + 1 + 317 path).
pub const MAX_SIGNER_NAME_LEN: usize = 571;

/// `kubernetes.io/kube-apiserver-client-kubelet`.
pub const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `kubernetes.io/kubelet-serving`.
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
/// `kubernetes.io/kube-apiserver-client`.
pub const APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
/// `kubernetes.io/legacy-unknown` (never served).
pub const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

/// The CN prefix of node identities.
pub const NODE_CN_PREFIX: &str = "system:node:";
/// The O of node identities.
pub const NODES_GROUP: &str = "system:nodes";

/// A signer name this appliance can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignerName {
    /// `kubernetes.io/kube-apiserver-client-kubelet`: kubelet client certificates.
    KubeletClient,
    /// `kubernetes.io/kubelet-serving`: kubelet serving certificates.
    KubeletServing,
    /// `kubernetes.io/kube-apiserver-client`: other API clients (off unless enabled).
    ApiserverClient,
}

impl SignerName {
    /// All served names.
    pub const ALL: [SignerName; 3] = [
        SignerName::KubeletClient,
        SignerName::KubeletServing,
        SignerName::ApiserverClient,
    ];

    /// Parses a served name; `None` for every other name (including `legacy-unknown`).
    pub fn parse(s: &str) -> Option<SignerName> {
        SignerName::ALL.into_iter().find(|n| n.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignerName::KubeletClient => KUBELET_CLIENT,
            SignerName::KubeletServing => KUBELET_SERVING,
            SignerName::ApiserverClient => APISERVER_CLIENT,
        }
    }
}

impl fmt::Display for SignerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kubernetes node name: a DNS-1123 subdomain (lower-case alphanumerics, `-` and `.`, each
/// label starting and ending alphanumeric, ≤ 253 characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);

impl NodeName {
    /// Parses a node name.
    pub fn parse(s: &str) -> Option<NodeName> {
        is_dns1123_subdomain(s).then(|| NodeName(s.to_owned()))
    }

    /// Parses a node identity CN `system:node:<name>`.
    pub fn from_common_name(cn: &str) -> Option<NodeName> {
        cn.strip_prefix(NODE_CN_PREFIX).and_then(NodeName::parse)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The node's user name / CN: `system:node:<name>`.
    pub fn user_name(&self) -> String {
        format!("{NODE_CN_PREFIX}{}", self.0)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True for a DNS-1123 subdomain.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NODE_NAME_LEN
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

/// True for a host name a serving certificate may carry: DNS-1123 subdomain, also allowing
/// upper-case letters (DNS is case-insensitive) and a leading `*.` is NOT allowed.
pub fn is_host_name(s: &str) -> bool {
    is_dns1123_subdomain(&s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;

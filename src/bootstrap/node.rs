//! The node name a CSR is made for: `--node-name`, or the lower-cased host name (as the
//! kubelet without `--hostname-override`).

use std::fmt;

/// Longest node name: a Kubernetes object name (DNS-1123 subdomain) is at most 253 bytes.
pub const MAX_NODE_NAME_LEN: usize = 253;
/// Longest label inside a DNS-1123 subdomain (RFC 1123).
const MAX_LABEL_LEN: usize = 63;

/// A node name that is a DNS-1123 subdomain (lower case letters, digits, `-`, `.`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeName(String);

/// A node name that is not a DNS-1123 subdomain.
#[derive(Debug, thiserror::Error)]
#[error("node name {name:?} is not a DNS-1123 subdomain (lower case letters, digits, '-', '.')")]
pub struct BadNodeName {
    /// The rejected name.
    pub name: String,
}

impl NodeName {
    /// Parses a node name.
    pub fn parse(name: &str) -> Result<Self, BadNodeName> {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= MAX_LABEL_LEN
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.len() <= MAX_NODE_NAME_LEN && name.split('.').all(label_ok) {
            Ok(Self(name.to_string()))
        } else {
            Err(BadNodeName {
                name: name.to_string(),
            })
        }
    }

    /// The lower-cased host name of this machine.
    pub fn from_hostname() -> Result<Self, BadNodeName> {
        let uname = rustix::system::uname();
        let host = uname.nodename().to_string_lossy().to_lowercase();
        Self::parse(host.trim())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The certificate common name, `system:node:<name>`.
    pub fn common_name(&self) -> String {
        format!("system:node:{}", self.0)
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests;

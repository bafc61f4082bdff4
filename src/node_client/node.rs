//! The node name a CSR is made for: `--node-name`, or the lower-cased host name (as the
//! kubelet without `--hostname-override`). The name and its rule are `issue::NodeName`, the
//! same type the appliance parses a node's CSR into.

pub use crate::issue::NodeName;

/// A node name that is not a DNS-1123 subdomain.
#[derive(Debug, thiserror::Error)]
#[error("node name {name:?} is not a DNS-1123 subdomain (lower case letters, digits, '-', '.')")]
pub struct BadNodeName {
    /// The rejected name.
    pub name: String,
}

/// Parses `--node-name`.
pub fn parse(name: &str) -> Result<NodeName, BadNodeName> {
    NodeName::parse(name).ok_or_else(|| BadNodeName {
        name: name.to_owned(),
    })
}

/// The lower-cased host name of this machine.
pub fn from_hostname() -> Result<NodeName, BadNodeName> {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().to_lowercase();
    parse(host.trim())
}

#[cfg(test)]
mod tests;

//! The node inventory: which addresses, CIDRs and DNS names each node may put in its serving
//! certificate. A TOML file:
//!
//! ```toml
//! [nodes.node1]
//! addresses = ["10.0.0.5", "fd00::5"]
//! cidrs = ["10.0.1.0/24"]
//! dns_names = ["node1", "node1.example.com"]
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::issue::names::is_host_name;
use crate::issue::{NodeName, San};

/// Named bound: inventory file size (100k nodes × a few entries fits in well under 16 MiB).
pub const MAX_INVENTORY_BYTES: u64 = 16 * 1024 * 1024;
/// Named bound: nodes in the inventory (Kubernetes' documented scale limit is 5,000 nodes per
/// cluster; the appliance may serve several clusters: 100,000).
pub const MAX_NODES: usize = 100_000;
/// Named bound: entries (addresses + CIDRs + DNS names) per node (matches `MAX_SANS` × 4).
pub const MAX_ENTRIES_PER_NODE: usize = 256;

/// Errors loading the inventory.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be read.
    #[error("cannot read node inventory {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is over the size bound.
    #[error("node inventory {path} is larger than {MAX_INVENTORY_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The TOML does not match the schema.
    #[error("invalid node inventory: {message}")]
    Parse {
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A node name is not a DNS-1123 subdomain.
    #[error("invalid node name {name:?} in the node inventory")]
    NodeName {
        /// The name.
        name: String,
    },
    /// A DNS name is not a valid host name.
    #[error("node {node}: invalid DNS name {name:?}")]
    DnsName {
        /// The node.
        node: String,
        /// The name.
        name: String,
    },
    /// A count over its named bound.
    #[error("{what}: {count} exceeds the limit of {max}")]
    TooMany {
        /// What was counted.
        what: String,
        /// How many.
        count: usize,
        /// The bound.
        max: usize,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNode {
    addresses: Vec<IpAddr>,
    cidrs: Vec<IpNet>,
    dns_names: Vec<String>,
}

/// What one node may claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeEntry {
    /// Exact addresses.
    pub addresses: Vec<IpAddr>,
    /// Address ranges.
    pub cidrs: Vec<IpNet>,
    /// DNS names (lower case).
    pub dns_names: Vec<String>,
}

impl NodeEntry {
    /// True if the node may carry `san` in a serving certificate.
    pub fn allows(&self, san: &San) -> bool {
        match san {
            San::Dns(d) => {
                let d = d.to_ascii_lowercase();
                self.dns_names.contains(&d)
            }
            San::Ip(ip) => self.addresses.contains(ip) || self.cidrs.iter().any(|c| c.contains(ip)),
            _ => false,
        }
    }
}

/// The node inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInventory {
    nodes: BTreeMap<NodeName, NodeEntry>,
}

impl NodeInventory {
    /// Loads and parses the inventory file.
    pub fn load(path: &Path) -> Result<NodeInventory, InventoryError> {
        let read = |source| InventoryError::Read {
            path: path.to_owned(),
            source,
        };
        if std::fs::metadata(path).map_err(read)?.len() > MAX_INVENTORY_BYTES {
            return Err(InventoryError::TooLarge {
                path: path.to_owned(),
            });
        }
        NodeInventory::parse(&std::fs::read_to_string(path).map_err(read)?)
    }

    /// Parses inventory TOML.
    pub fn parse(text: &str) -> Result<NodeInventory, InventoryError> {
        let file: File = toml::from_str(text).map_err(|e| InventoryError::Parse {
            message: e.to_string(),
        })?;
        if file.nodes.len() > MAX_NODES {
            return Err(InventoryError::TooMany {
                what: "nodes".to_owned(),
                count: file.nodes.len(),
                max: MAX_NODES,
            });
        }
        let mut nodes = BTreeMap::new();
        for (name, raw) in file.nodes {
            let node = NodeName::parse(&name)
                .ok_or_else(|| InventoryError::NodeName { name: name.clone() })?;
            let count = raw.addresses.len() + raw.cidrs.len() + raw.dns_names.len();
            if count > MAX_ENTRIES_PER_NODE {
                return Err(InventoryError::TooMany {
                    what: format!("entries for node {name}"),
                    count,
                    max: MAX_ENTRIES_PER_NODE,
                });
            }
            let mut dns_names = Vec::with_capacity(raw.dns_names.len());
            for d in raw.dns_names {
                if !is_host_name(&d) {
                    return Err(InventoryError::DnsName {
                        node: name.clone(),
                        name: d,
                    });
                }
                dns_names.push(d.to_ascii_lowercase());
            }
            let entry = NodeEntry {
                addresses: raw.addresses,
                cidrs: raw.cidrs,
                dns_names,
            };
            nodes.insert(node, entry);
        }
        Ok(NodeInventory { nodes })
    }

    /// The entry for a node.
    pub fn get(&self, node: &NodeName) -> Option<&NodeEntry> {
        self.nodes.get(node)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests;

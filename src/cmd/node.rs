//! `kubesigner node disable|enable|forget NAME --config FILE`: node states the approver reads.
//! A disabled node's CSRs are denied; forgetting a node drops its state and its issued-certificate
//! records, so it may bootstrap again.

use std::path::PathBuf;

use crate::exit;
use crate::issue::NodeName;
use crate::store::Store;

/// The node subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Deny every future CSR for this node.
    Disable(NodeArgs),
    /// Allow CSRs for this node again.
    Enable(NodeArgs),
    /// Forget the node's state and issued-certificate records.
    Forget(NodeArgs),
}

/// One node and the configuration naming the data dir.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node name (the part after `system:node:`).
    pub name: String,
    /// The configuration file.
    #[arg(long)]
    pub config: PathBuf,
}

impl NodeCommand {
    /// Runs the subcommand; returns the exit code.
    pub fn run(self) -> i32 {
        let (args, action) = match self {
            NodeCommand::Disable(a) => (a, "disable"),
            NodeCommand::Enable(a) => (a, "enable"),
            NodeCommand::Forget(a) => (a, "forget"),
        };
        let Some(node) = NodeName::parse(&args.name) else {
            tracing::error!(name = %args.name, "not a valid node name");
            return exit::USAGE;
        };
        let cfg = match super::serve::load_config(&args.config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "bad configuration");
                return exit::USAGE;
            }
        };
        let store = match Store::open(&cfg.data_dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot open the store");
                return exit::UNAVAILABLE;
            }
        };
        let result = match action {
            "disable" => store.set_node_disabled(node.as_str(), true).map(|()| true),
            "enable" => store.set_node_disabled(node.as_str(), false).map(|()| true),
            _ => store.forget_node(node.as_str()),
        };
        match result {
            Ok(known) => {
                tracing::info!(node = %node.as_str(), action, known, "node updated");
                0
            }
            Err(e) => {
                tracing::error!(error = %e, "node update failed");
                exit::UNAVAILABLE
            }
        }
    }
}

//! `kubesigner node disable|enable|forget|show NAME --config FILE`: node states the approver reads.
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
    /// Forget the node's state, issued-certificate records and first bootstrap address.
    Forget(NodeArgs),
    /// Show what the store knows of the node (state, latest certificate, first address).
    Show(NodeArgs),
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
            NodeCommand::Show(a) => (a, "show"),
        };
        let Some(node) = NodeName::parse(&args.name) else {
            tracing::error!(name = %args.name, "not a valid node name");
            return exit::USAGE;
        };
        let cfg = match crate::config::Config::load(&args.config) {
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
        if action == "show" {
            return show(&store, node.as_str());
        }
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

/// Prints the node's stored facts, one `key: value` line each.
fn show(store: &Store, node: &str) -> i32 {
    let now = crate::clock::unix_now();
    match store.node_state(node, now) {
        Ok(st) => {
            let not_after = st
                .latest_not_after_unix
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
                .map_or_else(|| "none".to_owned(), |t| t.to_string());
            let first = st
                .first_bootstrap_address
                .map_or_else(|| "none".to_owned(), |a| a.to_string());
            println!("node: {node}");
            println!("disabled: {}", st.disabled);
            println!("latest-client-certificate-not-after: {not_after}");
            println!("first-bootstrap-address: {first}");
            0
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the node");
            exit::UNAVAILABLE
        }
    }
}

//! Command line: one subcommand per job. Each subcommand's arguments and its `run` live in
//! `src/cmd/<name>.rs`; this file only lists them.

use clap::{Parser, Subcommand};

use crate::cmd;

/// kubesigner: Kubernetes node certificates signed by a CA key that never leaves a PKCS#11 token.
#[derive(Debug, Parser)]
#[command(name = "kubesigner", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Token maintenance: generate a CA key in the token.
    #[command(subcommand)]
    Hsm(cmd::hsm::HsmCommand),
    /// CA certificate: self-signed init, CSR for an offline root, import.
    #[command(subcommand)]
    Ca(cmd::ca::CaCommand),
    /// Tokens: generate a static token; create, list, delete bootstrap tokens.
    #[command(subcommand)]
    Token(cmd::token::TokenCommand),
    /// Run the HTTPS appliance (CSR API, approval, signing).
    Serve(cmd::serve::ServeArgs),
    /// The embedded default: a SoftHSM token, CA, admin and bootstrap kubeconfigs in one
    /// directory, then serve (a generated production configuration).
    Dev(cmd::dev::DevArgs),
    /// Node states: disable, enable, forget.
    #[command(subcommand)]
    Node(cmd::node::NodeCommand),
    /// Node side: TLS bootstrap with kubelet semantics, then certificate rotation.
    Bootstrap(cmd::bootstrap::BootstrapArgs),
    /// The tamper-evident audit log: export, verify.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// External signer behind a real kube-apiserver (kube-rs, leader election).
    Controller(cmd::controller::ControllerArgs),
}

impl Command {
    /// Runs the subcommand; returns the process exit code.
    pub fn run(self) -> i32 {
        match self {
            Command::Hsm(c) => c.run(),
            Command::Ca(c) => c.run(),
            Command::Token(c) => c.run(),
            Command::Serve(c) => c.run(),
            Command::Dev(c) => c.run(),
            Command::Node(c) => c.run(),
            Command::Bootstrap(c) => c.run(),
            Command::Audit(c) => c.run(),
            Command::Controller(c) => c.run(),
        }
    }
}

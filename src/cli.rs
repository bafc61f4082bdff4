//! Command line: one subcommand per job. Each subcommand's arguments and its `run` live in
//! `src/cmd/<name>.rs`; this file only lists them.

use clap::{Parser, Subcommand};

use crate::cmd;

pub mod docs;

/// `kubesigner --version`: the semantic version and the commit it was built from (`build.rs`;
/// `unknown` when built outside a git checkout without `KUBESIGNER_GIT_REV`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KUBESIGNER_GIT_REV"),
    ")"
);

/// kubesigner: Kubernetes node certificates signed by a CA key that never leaves a PKCS#11 token.
#[derive(Debug, Parser)]
#[command(name = "kubesigner", version = VERSION, about)]
pub struct Cli {
    /// Log format (default: `[server] log_format` of a `serve --config` file, else text).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

pub use crate::config::LogFormat;

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
    /// A consistent copy of the store, taken while the service runs (SQLite online backup).
    Backup(cmd::backup::BackupArgs),
    /// Put a backup of the store back (the service must be stopped).
    Restore(cmd::backup::RestoreArgs),
    /// External signer behind a real kube-apiserver (kube-rs, leader election).
    Controller(cmd::controller::ControllerArgs),
    /// Man pages and shell completions from these definitions (the package build runs it).
    #[command(hide = true)]
    GenerateDocs(docs::DocsArgs),
}

impl Cli {
    /// The log format: `--log-format`, else `[server] log_format` of the configuration
    /// `serve --config` names (read early, before logging starts; a file that does not load
    /// is reported by `serve` itself), else text.
    pub fn log_format(&self) -> LogFormat {
        if let Some(f) = self.log_format {
            return f;
        }
        match &self.command {
            Command::Serve(a) => a
                .config
                .as_deref()
                .and_then(|p| crate::config::Config::load(p).ok())
                .map_or(LogFormat::Text, |c| c.server.log_format),
            _ => LogFormat::Text,
        }
    }
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
            Command::Backup(c) => c.run(),
            Command::Restore(c) => c.run(),
            Command::Controller(c) => c.run(),
            Command::GenerateDocs(c) => c.run(),
        }
    }
}

//! `kubesigner hsm` subcommands.

use clap::Subcommand;

/// `kubesigner hsm` subcommands.
#[derive(Debug, Subcommand)]
pub enum HsmCommand {}

impl HsmCommand {
    /// Runs the subcommand; returns the process exit code.
    pub fn run(self) -> i32 {
        match self {}
    }
}

//! `kubesigner ca` subcommands.

use clap::Subcommand;

/// `kubesigner ca` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCommand {}

impl CaCommand {
    /// Runs the subcommand; returns the process exit code.
    pub fn run(self) -> i32 {
        match self {}
    }
}

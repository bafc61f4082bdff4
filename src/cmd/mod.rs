//! Subcommand implementations, one file per subcommand.

pub mod bootstrap;
pub mod ca;
pub mod hsm;
pub mod token;

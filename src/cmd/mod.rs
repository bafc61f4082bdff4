//! Subcommand implementations, one file per subcommand.

pub mod ca;
pub mod hsm;
pub mod token;

//! Subcommand implementations, one file per subcommand.

pub mod audit;
pub mod backup;
pub mod bootstrap;
pub mod ca;
pub mod controller;
pub mod dev;
mod dev_token;
pub mod hsm;
pub mod node;
pub mod serve;
pub mod token;

//! CSR garbage collection: the rules deciding whether one CSR may be deleted now (`rules`,
//! `[gc]` config), and the task that applies them to the store every [`GcConfig::interval`]
//! (`task`: delete + audit on `Some`).

mod rules;
mod task;

pub use rules::{GcReason, collect};

//! The node inventory's part of a reload: its file's modification time (polled every
//! [`POLL_INTERVAL`], so an operator adds a node's addresses without a restart or a signal) and
//! the approval policy rebuilt over a new version.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::ReloadError;
use crate::config::{AuthConfig, IssuanceConfig};
use crate::policy::{Approver, NodeInventory};

/// How often the inventory file's modification time is checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The file's modification time, if it can be read.
pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads the inventory and builds the approval policy over it (blocking: reads a file).
pub fn rebuild(
    path: &Path,
    auth: &AuthConfig,
    issuance: &IssuanceConfig,
) -> Result<Approver, ReloadError> {
    let inventory = NodeInventory::load(path)?;
    Ok(Approver::new(auth, issuance, Some(inventory))?)
}

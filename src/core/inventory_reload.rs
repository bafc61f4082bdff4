//! Reloads the node inventory (`[issuance] node_inventory`) when the file changes, so an operator
//! adds a node's addresses without a restart. The file is polled (a stat every
//! [`POLL_INTERVAL`]); a new version that does not parse keeps the old policy and says why.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use super::engine::Core;
use crate::config::{AuthConfig, IssuanceConfig};
use crate::policy::{Approver, NodeInventory};

/// How often the inventory file's modification time is checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads the inventory and builds the approval policy over it (blocking: reads a file). The one
/// rebuild both reload paths use: this file's polling and SIGHUP (`crate::reload`).
pub fn rebuild(
    path: &Path,
    auth: &AuthConfig,
    issuance: &IssuanceConfig,
) -> Result<Approver, String> {
    let inventory = NodeInventory::load(path).map_err(|e| e.to_string())?;
    Approver::new(auth, issuance, Some(inventory)).map_err(|e| e.to_string())
}

/// Spawns the reload task when an inventory file is configured: each good new version of the
/// file becomes `core`'s approval policy.
pub fn spawn(
    core: Arc<Core>,
    auth: AuthConfig,
    issuance: IssuanceConfig,
) -> Option<JoinHandle<()>> {
    spawn_with(auth, issuance, move |a| core.replace_approver(a))
}

/// As [`spawn`], handing each rebuilt policy to `replace`.
fn spawn_with(
    auth: AuthConfig,
    issuance: IssuanceConfig,
    replace: impl Fn(Approver) + Send + Sync + 'static,
) -> Option<JoinHandle<()>> {
    let path = issuance.node_inventory.clone()?;
    Some(tokio::spawn(async move {
        let mut seen = modified(&path);
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        loop {
            tick.tick().await;
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            let (p, a, i) = (path.clone(), auth.clone(), issuance.clone());
            match tokio::task::spawn_blocking(move || rebuild(&p, &a, &i)).await {
                Ok(Ok(approver)) => {
                    replace(approver);
                    tracing::info!(path = %path.display(), "node inventory reloaded");
                }
                Ok(Err(why)) => tracing::warn!(
                    path = %path.display(),
                    error = %why,
                    "node inventory not reloaded: keeping the previous one"
                ),
                Err(e) => tracing::warn!(error = %e, "node inventory reload task failed"),
            }
        }
    }))
}

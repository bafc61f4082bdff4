//! Serializes the decisions about one node: "one live certificate per node" is read (node
//! state) and recorded (the issued-certificate row, in the create's transaction) while the
//! node's lock is held, so N concurrent bootstraps for one node give exactly one certificate.
//!
//! Striped: a fixed array of async mutexes indexed by a keyed hash of the node name (random key
//! per process, so a caller cannot pick names that collide on purpose). Two nodes that share a
//! stripe only wait for each other; memory stays bounded whatever names arrive.

use std::hash::BuildHasher;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// Named bound: how many stripes. With 200 concurrent creates for distinct nodes, two share a
/// stripe with probability ≈ 1 − e^(−200²/2048) per burst, each waiting one create (a few ms).
pub const STRIPES: usize = 1024;

/// The per-node locks.
#[derive(Debug)]
pub struct NodeLocks {
    stripes: Box<[Arc<Mutex<()>>]>,
    hasher: std::collections::hash_map::RandomState,
}

/// Held while one node's decision is made and committed.
#[derive(Debug)]
pub struct NodeGuard {
    _guard: OwnedMutexGuard<()>,
}

impl Default for NodeLocks {
    fn default() -> Self {
        NodeLocks {
            stripes: (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl NodeLocks {
    /// Waits for `node`'s lock.
    pub async fn lock(&self, node: &str) -> NodeGuard {
        let i = usize::try_from(self.hasher.hash_one(node) % STRIPES as u64).unwrap_or(0);
        let stripe = self.stripes.get(i).or(self.stripes.first());
        match stripe {
            Some(m) => NodeGuard {
                _guard: Arc::clone(m).lock_owned().await,
            },
            // STRIPES > 0: unreachable; a fresh lock keeps this total without a panic.
            None => NodeGuard {
                _guard: Arc::new(Mutex::new(())).lock_owned().await,
            },
        }
    }
}

#[cfg(test)]
mod tests;

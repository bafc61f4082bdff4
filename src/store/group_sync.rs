//! Group commit: one `fsync` of the write-ahead log makes every commit before it durable.
//!
//! The connection runs with `synchronous=NORMAL` (a commit writes its WAL frames but does not
//! sync them), and every writer, after its commit and before it returns, waits in
//! [`GroupSync::wait_durable`] until the WAL has been synced past its commit. The first waiter
//! becomes the leader and syncs the WAL file once for everything committed so far; writers that
//! committed meanwhile wait for that sync or lead the next one. Under load one sync covers many
//! commits, where `synchronous=FULL` synced once per commit while holding the store lock (new
//! CSRs are batched further: one commit per batch, see `batch`). A write is still
//! acknowledged only once it is on disk. SQLite syncs the WAL itself before a checkpoint copies
//! frames into the database, so `NORMAL` keeps the file consistent after a crash.
//! Committed changes are visible (to reads and on the watch feed) right after the commit, at
//! most one group sync before they are durable; only the writer's answer waits for the sync.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// Commit and sync counters (commit sequence numbers, not resourceVersions).
#[derive(Debug, Default)]
struct Counters {
    /// Commits made so far.
    committed: u64,
    /// Every commit up to this one is on disk.
    synced: u64,
    /// A leader is syncing now.
    syncing: bool,
}

/// The group-commit coordinator of one database file.
#[derive(Debug)]
pub(super) struct GroupSync {
    /// The `-wal` file next to the database.
    wal: PathBuf,
    counters: Mutex<Counters>,
    done: Condvar,
}

/// Why the WAL could not be made durable.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Syncing the write-ahead log failed: the commit may not survive a crash.
    #[error("syncing the write-ahead log {path}: {source}")]
    Io {
        /// The WAL file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A thread panicked while holding the counters.
    #[error("group-commit state poisoned")]
    Poisoned,
}

impl GroupSync {
    /// The coordinator for the database at `db`.
    pub(super) fn new(db: &Path) -> Self {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        GroupSync {
            wal: PathBuf::from(wal),
            counters: Mutex::new(Counters::default()),
            done: Condvar::new(),
        }
    }

    /// Records one commit; call it right after the commit, under the store lock. Returns the
    /// commit's sequence number for [`GroupSync::wait_durable`].
    pub(super) fn committed(&self) -> Result<u64, SyncError> {
        let mut c = self.counters.lock().map_err(|_| SyncError::Poisoned)?;
        c.committed += 1;
        Ok(c.committed)
    }

    /// Returns once commit `seq` is on disk, syncing the WAL if no one else is.
    pub(super) fn wait_durable(&self, seq: u64) -> Result<(), SyncError> {
        let mut c = self.counters.lock().map_err(|_| SyncError::Poisoned)?;
        loop {
            if c.synced >= seq {
                return Ok(());
            }
            if c.syncing {
                c = self.done.wait(c).map_err(|_| SyncError::Poisoned)?;
                continue;
            }
            c.syncing = true;
            let target = c.committed;
            drop(c);
            // Opened per sync: cheap next to the sync, and never a stale handle.
            let r = File::open(&self.wal).and_then(|f| f.sync_data());
            c = self.counters.lock().map_err(|_| SyncError::Poisoned)?;
            c.syncing = false;
            self.done.notify_all();
            match r {
                Ok(()) => c.synced = c.synced.max(target),
                Err(source) => {
                    return Err(SyncError::Io {
                        path: self.wal.clone(),
                        source,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

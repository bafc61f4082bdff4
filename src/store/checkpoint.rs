//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the commit
//! that crosses the threshold, on the writer's thread and under the store lock: that commit
//! then copies about a thousand pages into the database and syncs it while every other writer
//! waits (a latency spike every few hundred CSRs under load). The store's own connection turns
//! automatic checkpoints off and this thread checkpoints from its own connection instead,
//! `PASSIVE` (never blocks the writer), every [`CHECKPOINT_INTERVAL`]. SQLite syncs the WAL
//! before it copies frames, so durability is the same.
//!
//! The WAL restarts from its beginning only when a writer finds it checkpointed to its very
//! end. Under steady load a checkpoint running beside the writers never gets there: new frames
//! arrive while it copies, so the WAL grew without bound (700 MB after 12,000 certificates in
//! the benchmark, every append extending the file). So after the lock-free pass, the frames
//! that arrived meanwhile (few) are copied by a second pass under the store lock, where no
//! writer can append; the next commit then rewrites the WAL from its start.

use std::path::Path;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use rusqlite::Connection;

use super::BUSY_TIMEOUT;

/// How often the WAL is checkpointed. At a few thousand commits per second of a few pages each
/// the WAL grows by tens of MiB per second; a fifth of a second keeps it to a few MiB.
pub(super) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Starts the checkpoint thread for the database at `path`; it ends when `alive` (the store's
/// state) is gone. `false` when no thread could be started (then leave automatic checkpoints
/// on).
pub(super) fn spawn<T: Send + 'static>(
    path: &Path,
    alive: Weak<Mutex<T>>,
) -> Result<bool, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let spawned = std::thread::Builder::new()
        .name("kubesigner-checkpoint".to_owned())
        .spawn(move || run(&conn, &alive));
    match spawned {
        Ok(_) => Ok(true),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the checkpoint thread; the WAL is checkpointed on commit");
            Ok(false)
        }
    }
}

fn run<T>(conn: &Connection, alive: &Weak<Mutex<T>>) {
    loop {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        let Some(state) = alive.upgrade() else {
            return;
        };
        match passive(conn) {
            Ok(frames) if frames > 0 => {
                // Writers wait on the store lock for this pass; it copies only what was
                // appended during the first one, and it ends with no write transaction open,
                // so the next one restarts the WAL.
                let Ok(_writers_held) = state.lock() else {
                    return;
                };
                if let Err(e) = passive(conn) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
        }
    }
}

/// One `PASSIVE` checkpoint; returns the number of frames in the WAL.
fn passive(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

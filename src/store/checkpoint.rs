//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the commit
//! that crosses the threshold, on the writer's thread and under the store lock: that commit
//! then copies about a thousand pages into the database and syncs it while every other writer
//! waits (a latency spike every few hundred CSRs under load). The store's own connection turns
//! automatic checkpoints off and this thread checkpoints from its own connection instead,
//! `PASSIVE` (never blocks the writer), every [`CHECKPOINT_INTERVAL`]. SQLite syncs the WAL
//! before it copies frames, so durability is the same; the WAL restarts from its beginning
//! once a checkpoint has copied all of it.

use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

use rusqlite::Connection;

use super::BUSY_TIMEOUT;

/// How often the WAL is checkpointed. At a few thousand commits per second of a few pages each
/// the WAL grows by tens of MiB per second; a fifth of a second keeps it to a few MiB.
pub(super) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Starts the checkpoint thread for the database at `path`; it ends when `alive` (the store's
/// state) is gone. `false` when no thread could be started (then leave automatic checkpoints
/// on).
pub(super) fn spawn<T: Send + Sync + 'static>(
    path: &Path,
    alive: Weak<T>,
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

fn run<T>(conn: &Connection, alive: &Weak<T>) {
    loop {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        if alive.strong_count() == 0 {
            return;
        }
        let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
        if let Err(e) = r {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
}

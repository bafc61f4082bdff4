//! Whole-file operations on a store file for `kubesigner backup`: a consistent online copy
//! (SQLite's backup API) and reading a copy's audit chain without opening it as a store.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::error::StoreError;

/// How long a backup step waits for a busy source (SQLite's busy timeout).
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// Backup steps retried while the source is busy or locked.
const MAX_BUSY_STEPS: u32 = 200;

/// Copies the store file at `src` into `dst` in one backup step (one consistent snapshot under
/// one read transaction; WAL writers are not blocked). `dst` ends self-contained (no WAL);
/// the caller syncs it.
pub fn online_copy(src: &Path, dst: &Path) -> Result<(), StoreError> {
    let from = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    from.busy_timeout(BUSY_WAIT)?;
    let mut to = Connection::open(dst)?;
    {
        let b = rusqlite::backup::Backup::new(&from, &mut to)?;
        let mut busy = 0;
        loop {
            // -1: every page in one step, so the copy is one consistent snapshot.
            match b.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                _ if busy >= MAX_BUSY_STEPS => return Err(StoreError::BackupBusy),
                _ => {
                    busy += 1;
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        }
    }
    to.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// The audit records of the store file at `path`, opened read-only (nothing migrated).
pub fn audit_records_of(path: &Path) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(crate::audit::all(&conn)?)
}

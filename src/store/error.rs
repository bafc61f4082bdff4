//! Errors of the store layer.

use std::path::PathBuf;

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O, corruption, lock timeout).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An online backup's source stayed busy or locked past the retries.
    #[error("the store stayed busy; try again")]
    BackupBusy,
    /// A stored object is not valid JSON for its type (corruption or a foreign writer).
    #[error("stored object {name} cannot be decoded: {source}")]
    Decode {
        /// The CSR's name.
        name: String,
        /// The decoder's error.
        source: serde_json::Error,
    },
    /// An object could not be encoded.
    #[error("object cannot be encoded: {0}")]
    Encode(serde_json::Error),
    /// The database was written by a newer kubesigner: refused, never guessed at (a downgrade
    /// needs the backup taken before the upgrade).
    #[error(
        "the store's {component} schema is version {found}, newer than this kubesigner knows \
         ({known}): it was written by a newer release; run that release, or restore the backup \
         taken before the upgrade"
    )]
    SchemaTooNew {
        /// The `schema_version` row (`store`, `leases`, ...).
        component: String,
        /// The version in the file.
        found: u32,
        /// The newest this binary knows.
        known: u32,
    },
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A CSR with that name already exists (409 AlreadyExists).
    #[error("certificatesigningrequest {name} already exists")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// No CSR with that name (404).
    #[error("certificatesigningrequest {name} not found")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The caller's resourceVersion is not the stored one (409 Conflict).
    #[error("certificatesigningrequest {name}: resourceVersion {given} is stale (now {current})")]
    Conflict {
        /// The name.
        name: String,
        /// The RV the caller sent.
        given: u64,
        /// The stored RV.
        current: u64,
    },
    /// A watch asked for a resourceVersion older than the event window (410 Gone).
    #[error("resourceVersion {requested} is too old (oldest available {oldest})")]
    Expired {
        /// What the caller asked for.
        requested: u64,
        /// Roughly the oldest RV still replayable.
        oldest: u64,
    },
    /// A previous holder of the connection lock panicked.
    #[error("store lock poisoned")]
    Poisoned,
    /// The CSR writer thread could not be started.
    #[error("cannot start the store's writer thread: {0}")]
    WriterStart(std::io::Error),
    /// The CSR writer thread is gone (the store is shutting down, or the thread panicked).
    #[error("the store's writer has stopped")]
    WriterGone,
    /// A commit could not be made durable (the group sync of the write-ahead log failed).
    #[error(transparent)]
    Sync(#[from] super::group_sync::SyncError),
}

impl StoreError {
    /// True when the write failed because the data dir's file system is full (`SQLITE_FULL`
    /// or ENOSPC): nothing was written and the write may be retried when space returns.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            StoreError::DataDir { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

/// The result of a read-modify-write closure that refused the change.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The store failed or refused (not found, conflict).
    Store(StoreError),
    /// The closure refused the change; nothing was written.
    Rejected(E),
}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(e: StoreError) -> Self {
        UpdateError::Store(e)
    }
}

impl<E> From<rusqlite::Error> for UpdateError<E> {
    fn from(e: rusqlite::Error) -> Self {
        UpdateError::Store(StoreError::Sqlite(e))
    }
}

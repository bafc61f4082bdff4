//! The data dir's lock: an exclusive `flock` on [`LOCK_FILE`] that `serve` holds for its
//! lifetime, so `kubesigner restore` cannot replace the store under a running service.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file in the data dir that a running `serve` holds (exclusive `flock`).
pub const LOCK_FILE: &str = "kubesigner.lock";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DataDirLockError {
    /// Another process (a running service) holds it.
    #[error("{0} is held: a kubesigner service is running on this data dir")]
    Running(PathBuf),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DataDirLockError {
    let path = path.to_owned();
    move |source| DataDirLockError::Io { what, path, source }
}

/// Takes the data dir's exclusive lock (non-blocking); `serve` holds it while it runs.
pub fn lock_data_dir(data_dir: &Path) -> Result<File, DataDirLockError> {
    super::private::create_dir_all(data_dir).map_err(io("create", data_dir))?;
    let path = data_dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .mode(super::private::FILE_MODE)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open", &path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(DataDirLockError::Running(path)),
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock", &path)(e)),
    }
}

//! `kubesigner backup --config FILE --out PATH`: a consistent copy of the store (CSRs, node
//! states, bootstrap-token hashes, the audit chain) taken with SQLite's online backup API while
//! the service runs (one step under one read transaction; WAL writers are not blocked), written
//! to a temporary file, synced and renamed; its audit chain is verified.
//!
//! `kubesigner restore --config FILE --from PATH [--force]`: refuses while a service holds the
//! data dir's lock (`store::lock_data_dir`, taken by `serve` for its lifetime); verifies the backup's
//! audit chain before anything is replaced; puts it in place by rename. The token key is not in
//! the store: back it up with the HSM's own tools (docs/deployment.md).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::audit;
use crate::exit;
use crate::store::{DB_FILE, DataDirLockError, Store, StoreError};

/// `kubesigner backup` arguments.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The configuration file (names the data dir).
    #[arg(long)]
    pub config: PathBuf,
    /// Where to write the copy (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// `kubesigner restore` arguments.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The configuration file (names the data dir).
    #[arg(long)]
    pub config: PathBuf,
    /// The backup to restore.
    #[arg(long)]
    pub from: PathBuf,
    /// Replace an existing store (it is kept beside, renamed `kubesigner.db.replaced-<time>`).
    #[arg(long)]
    pub force: bool,
}

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
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
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The source stayed busy.
    #[error("the store stayed busy; try again")]
    Busy,
    /// The output or target exists.
    #[error("{0} exists (refusing to overwrite)")]
    Exists(PathBuf),
    /// The data dir has no store to back up.
    #[error("no store at {0}")]
    NoStore(PathBuf),
    /// A service holds the data dir.
    #[error("a running kubesigner holds {0}: stop the service before restoring")]
    Running(PathBuf),
    /// The backup's audit chain does not verify.
    #[error("the backup's audit chain does not verify: {0}")]
    Audit(#[from] audit::AuditError),
}

impl BackupError {
    fn exit_code(&self) -> i32 {
        match self {
            BackupError::Config(_) | BackupError::Exists(_) => exit::USAGE,
            BackupError::NoStore(_) => exit::NO_INPUT,
            BackupError::Audit(_) => 65,
            _ => exit::UNAVAILABLE,
        }
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io { what, path, source }
}

/// Takes the data dir's exclusive lock (`store::lock_data_dir`) as a backup error.
fn lock_data_dir(data_dir: &Path) -> Result<File, BackupError> {
    crate::store::lock_data_dir(data_dir).map_err(|e| match e {
        DataDirLockError::Running(path) => BackupError::Running(path),
        DataDirLockError::Io { what, path, source } => BackupError::Io { what, path, source },
    })
}

fn verify_chain(records: &[audit::AuditRecord]) -> Result<audit::Summary, BackupError> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(|e| BackupError::Io {
            what: "encode",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?);
        text.push('\n');
    }
    Ok(audit::verify_with(&text, &audit::VerifyOptions::default())?)
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("sync", path))
}

fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    sync_file(dir.unwrap_or(Path::new(".")))
}

/// Copies the database at `src` into a new file `dst` (one consistent snapshot) and syncs it.
fn online_copy(src: &Path, dst: &Path) -> Result<(), BackupError> {
    crate::store::backup::online_copy(src, dst).map_err(|e| match e {
        StoreError::BackupBusy => BackupError::Busy,
        other => BackupError::Store(other),
    })?;
    sync_file(dst)
}

fn run_backup(a: &BackupArgs) -> Result<(), BackupError> {
    let cfg = crate::config::Config::load(&a.config)?;
    let src = cfg.data_dir.join(DB_FILE);
    if !src.exists() {
        return Err(BackupError::NoStore(src));
    }
    if a.out.exists() {
        return Err(BackupError::Exists(a.out.clone()));
    }
    let tmp = a.out.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    // The copy holds token hashes, CSRs and the audit chain: 0600 before a byte is written.
    crate::store::private::prepare_db_file(&tmp).map_err(io("create", &tmp))?;
    online_copy(&src, &tmp)?;
    let records = crate::store::backup::audit_records_of(&tmp)?;
    let summary = verify_chain(&records)?;
    std::fs::rename(&tmp, &a.out).map_err(io("rename", &a.out))?;
    sync_parent(&a.out)?;
    println!(
        "backup {}: {} audit records, chain intact, head {}",
        a.out.display(),
        summary.records,
        records.last().map_or(audit::GENESIS, |r| r.hash.as_str())
    );
    Ok(())
}

fn run_restore(a: &RestoreArgs) -> Result<(), BackupError> {
    let cfg = crate::config::Config::load(&a.config)?;
    if !a.from.is_file() {
        return Err(BackupError::NoStore(a.from.clone()));
    }
    // Held until the restore is done: a service cannot start half-way.
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let target = cfg.data_dir.join(DB_FILE);
    if target.exists() && !a.force {
        return Err(BackupError::Exists(target));
    }
    let staged = cfg.data_dir.join(format!("{DB_FILE}.restoring"));
    for p in [&staged, &staged.with_extension("restoring-wal")] {
        let _ = std::fs::remove_file(p);
    }
    std::fs::copy(&a.from, &staged).map_err(io("copy", &staged))?;
    // Opened as a store: migrated to this version's schema, then its chain verified.
    let summary = {
        let store = Store::open_file(&staged)?;
        verify_chain(&store.audit_records()?)?
    };
    sync_file(&staged)?;
    if target.exists() {
        let stamp = crate::clock::unix_now();
        for suffix in ["", "-wal", "-shm"] {
            let old = cfg.data_dir.join(format!("{DB_FILE}{suffix}"));
            if old.exists() {
                let aside = cfg
                    .data_dir
                    .join(format!("{DB_FILE}{suffix}.replaced-{stamp}"));
                std::fs::rename(&old, &aside).map_err(io("rename", &old))?;
            }
        }
    }
    std::fs::rename(&staged, &target).map_err(io("rename", &target))?;
    sync_parent(&target)?;
    println!(
        "restored {} into {}: {} audit records, chain intact",
        a.from.display(),
        target.display(),
        summary.records
    );
    Ok(())
}

fn report(r: Result<(), BackupError>, what: &str) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "{what} failed");
            e.exit_code()
        }
    }
}

impl BackupArgs {
    /// Runs `kubesigner backup`; returns the exit code.
    pub fn run(self) -> i32 {
        report(run_backup(&self), "backup")
    }
}

impl RestoreArgs {
    /// Runs `kubesigner restore`; returns the exit code.
    pub fn run(self) -> i32 {
        report(run_restore(&self), "restore")
    }
}

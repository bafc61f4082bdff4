//! `kubesigner audit export --config FILE` (JSON lines on stdout; works while the service runs,
//! SQLite WAL readers do not block it) and `kubesigner audit verify EXPORT [--head HASH]`
//! (checks the chain with no other input; `--head` is the last `head=` the system log shows).

use std::io::Write;
use std::path::PathBuf;

use crate::audit;
use crate::exit;
use crate::store::Store;

/// The audit subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Write the audit chain as JSON lines to stdout.
    Export {
        /// The configuration file (names the data dir).
        #[arg(long)]
        config: PathBuf,
    },
    /// Verify an export: edits, deletions, reorders; with --head, truncation.
    Verify {
        /// The export file.
        export: PathBuf,
        /// The newest `head=` hash from the system log; the export must reach it.
        #[arg(long)]
        head: Option<String>,
    },
}

impl AuditCommand {
    /// Runs the subcommand; returns the exit code.
    pub fn run(self) -> i32 {
        match self {
            AuditCommand::Export { config } => export(&config),
            AuditCommand::Verify { export, head } => verify(&export, head.as_deref()),
        }
    }
}

fn export(config: &std::path::Path) -> i32 {
    let cfg = match super::serve::load_config(config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return exit::USAGE;
        }
    };
    let records = match Store::open(&cfg.data_dir).and_then(|s| s.audit_records()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the audit log");
            return exit::UNAVAILABLE;
        }
    };
    let mut out = std::io::stdout().lock();
    for r in &records {
        let line = match serde_json::to_string(r) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a record");
                return exit::SOFTWARE;
            }
        };
        if writeln!(out, "{line}").is_err() {
            return exit::SOFTWARE;
        }
    }
    0
}

/// Exit code of a failed verification (EX_DATAERR).
const DATA_ERR: i32 = 65;

fn verify(path: &std::path::Path, head: Option<&str>) -> i32 {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read the export");
            return exit::NO_INPUT;
        }
    };
    match audit::verify(&text, head) {
        Ok(n) => {
            println!("ok: {n} records, chain intact");
            0
        }
        Err(e) => {
            println!("FAILED: {e}");
            DATA_ERR
        }
    }
}

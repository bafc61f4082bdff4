//! `kubesigner audit export --config FILE` (JSON lines on stdout; works while the service runs,
//! SQLite WAL readers do not block it) and `kubesigner audit verify EXPORT [--head HASH]
//! [--config FILE [--checkpoints LOGFILE]]`: the chain with no other input; with `--config` also
//! every checkpoint signature (audit key from `[audit] public_key_file`, else from the token)
//! and every `kubesigner-audit-checkpoint` line of the system-log extract.

use std::io::Write;
use std::path::{Path, PathBuf};

use der::Decode;
use spki::SubjectPublicKeyInfoOwned;

use crate::audit::{self, checkpoint};
use crate::exit;
use crate::signer::{
    Pkcs11Uri, PublicKey, Settings, SignerError, TokenSigner, UriOrigin, apply_module_environment,
};
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
        /// The configuration: checkpoint signatures are checked with its audit key.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A system-log extract (e.g. `journalctl -u kubesigner -o cat`): each checkpoint line
        /// in it must be in the export.
        #[arg(long, requires = "config")]
        checkpoints: Option<PathBuf>,
    },
}

impl AuditCommand {
    /// Runs the subcommand; returns the exit code.
    pub fn run(self) -> i32 {
        match self {
            AuditCommand::Export { config } => export(&config),
            AuditCommand::Verify {
                export,
                head,
                config,
                checkpoints,
            } => verify(
                &export,
                head.as_deref(),
                config.as_deref(),
                checkpoints.as_deref(),
            ),
        }
    }
}

fn export(config: &std::path::Path) -> i32 {
    let cfg = match crate::config::Config::load(config) {
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

fn read(path: &Path, what: &str) -> Result<String, i32> {
    std::fs::read_to_string(path).map_err(|e| {
        tracing::error!(file = %path.display(), error = %e, "cannot read the {what}");
        exit::NO_INPUT
    })
}

/// The audit public key: `[audit] public_key_file`, else from the token (may re-exec to apply
/// the module environment).
fn audit_key(config: &Path) -> Result<PublicKey, i32> {
    let cfg = crate::config::Config::load(config).map_err(|e| {
        tracing::error!(error = %e, "bad configuration");
        exit::USAGE
    })?;
    if let Some(p) = &cfg.audit.public_key_file {
        let pem = read(p, "audit public key")?;
        let (_, der) = der::pem::decode_vec(pem.as_bytes()).map_err(|e| {
            tracing::error!(file = %p.display(), error = %e, "not a PEM public key");
            exit::USAGE
        })?;
        return SubjectPublicKeyInfoOwned::from_der(&der)
            .map_err(SignerError::from)
            .and_then(PublicKey::from_spki)
            .map_err(|e| {
                tracing::error!(file = %p.display(), error = %e, "not a public key");
                exit::USAGE
            });
    }
    let from_token = || -> Result<PublicKey, SignerError> {
        apply_module_environment(&cfg.signer.environment)?;
        let uri = Pkcs11Uri::parse(&cfg.signer.key, UriOrigin::ConfigFile)?;
        let settings = Settings {
            max_sessions: 1,
            ..Settings::from(&cfg.signer)
        };
        let signer = TokenSigner::open(&uri, settings)?;
        checkpoint::public_key(&signer, &cfg.audit.key_label)
    };
    from_token().map_err(|e| {
        tracing::error!(error = %e, "cannot read the audit key from the token");
        e.exit_code()
    })
}

fn verify(
    path: &Path,
    head: Option<&str>,
    config: Option<&Path>,
    checkpoints: Option<&Path>,
) -> i32 {
    let text = match read(path, "export") {
        Ok(t) => t,
        Err(code) => return code,
    };
    let key = match config.map(audit_key).transpose() {
        Ok(k) => k,
        Err(code) => return code,
    };
    let logged = match checkpoints.map(|p| read(p, "system log")).transpose() {
        Ok(t) => t.as_deref().map(checkpoint::parse_log).unwrap_or_default(),
        Err(code) => return code,
    };
    let cadence = config
        .and_then(|c| crate::config::Config::load(c).ok())
        .map(|cfg| crate::audit::Cadence::from(&cfg.audit));
    let opts = audit::VerifyOptions {
        head,
        key: key.as_ref(),
        logged: &logged,
        cadence,
    };
    match audit::verify_with(&text, &opts) {
        Ok(s) => {
            println!(
                "ok: {} records, chain intact; {} checkpoints ({} signatures verified); {} logged checkpoints found",
                s.records, s.checkpoints, s.signatures, s.logged
            );
            0
        }
        Err(e) => {
            println!("FAILED: {e}");
            DATA_ERR
        }
    }
}

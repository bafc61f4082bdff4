//! `kubesigner token`: static-token generation and bootstrap-token maintenance. The token is
//! the only thing written to stdout; everything else goes to the log (stderr).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Subcommand;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::authn::bootstrap::{BootstrapTokenId, BootstrapTokenRecord, BootstrapTokens};
use crate::authn::{DB_FILE_NAME, static_tokens};
use crate::exit;

/// `kubesigner token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh 128-bit hex token for the static token file (`--token-auth-file`).
    GenerateStatic,
    /// Create a bootstrap token and print it (`id.secret`); it is shown only this once.
    Create {
        /// The configuration file (its `data_dir` holds the token table).
        #[arg(long)]
        config: PathBuf,
        /// How long the token authenticates.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Extra groups, each `system:bootstrappers:…` (repeat or separate with commas).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Free text shown by `token list`.
        #[arg(long, default_value = "")]
        description: String,
        /// Node names the token may bootstrap (glob, repeatable); none = any.
        #[arg(long = "node-name-pattern")]
        node_name_patterns: Vec<String>,
    },
    /// List bootstrap tokens (id, expiry, groups, description, patterns; never the secret).
    List {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Delete a bootstrap token by id.
    Delete {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The token id (the 6 characters before the dot).
        id: String,
    },
}

/// The one key of the configuration file these commands need; the others are ignored here.
#[derive(Debug, Deserialize)]
struct DataDirOnly {
    data_dir: PathBuf,
}

/// Errors of the token commands (turned into a message on stderr and an exit code).
#[derive(Debug, thiserror::Error)]
enum TokenCmdError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration file has no usable `data_dir`.
    #[error("invalid config file {path}: {source}")]
    ConfigParse {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The token id is not `[a-z0-9]{{6}}`.
    #[error("invalid token id (expected 6 characters [a-z0-9])")]
    BadId,
    /// No token with that id.
    #[error("no bootstrap token with id {0}")]
    NotFound(BootstrapTokenId),
    /// The token store failed or refused the input.
    #[error(transparent)]
    Authn(#[from] crate::authn::AuthnError),
    /// Writing to stdout failed.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    /// The store (which owns the audit log token changes are recorded in) could not be opened.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl TokenCmdError {
    fn exit_code(&self) -> i32 {
        use crate::authn::AuthnError as A;
        match self {
            TokenCmdError::ConfigRead { .. } => exit::NO_INPUT,
            TokenCmdError::DataDir { .. } | TokenCmdError::Store(_) => exit::UNAVAILABLE,
            TokenCmdError::ConfigParse { .. } | TokenCmdError::BadId => exit::USAGE,
            TokenCmdError::NotFound(_) => 1,
            TokenCmdError::Authn(
                A::InvalidGroup { .. }
                | A::InvalidPattern { .. }
                | A::InvalidTtl { .. }
                | A::TooLong { .. },
            ) => exit::USAGE,
            TokenCmdError::Authn(_) => exit::UNAVAILABLE,
            TokenCmdError::Output(_) => exit::SOFTWARE,
        }
    }
}

/// The token database path from the configuration file; a relative `data_dir` is relative to
/// the file's directory.
fn db_path(config: &Path) -> Result<PathBuf, TokenCmdError> {
    let text = std::fs::read_to_string(config).map_err(|source| TokenCmdError::ConfigRead {
        path: config.to_owned(),
        source,
    })?;
    let parsed: DataDirOnly =
        toml::from_str(&text).map_err(|source| TokenCmdError::ConfigParse {
            path: config.to_owned(),
            source,
        })?;
    let base = config.parent().unwrap_or(Path::new("."));
    Ok(base.join(parsed.data_dir).join(DB_FILE_NAME))
}

fn open(config: &Path) -> Result<BootstrapTokens, TokenCmdError> {
    let db = db_path(config)?;
    if let Some(dir) = db.parent().filter(|d| !d.exists()) {
        create_private_dir(dir).map_err(|source| TokenCmdError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    // The store's schema first: token changes are recorded in its audit log.
    crate::store::Store::open_file(&db)?;
    Ok(BootstrapTokens::open(&db)?)
}

/// Creates the data dir readable by its owner only (it holds token hashes and CSRs).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn list_line(r: &BootstrapTokenRecord, now: SystemTime) -> String {
    let or_dash = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(",")
        }
    };
    format!(
        "{}\t{}{}\t{}\t{}\t{}",
        r.id,
        rfc3339(r.expires),
        if r.expires <= now { " (expired)" } else { "" },
        or_dash(&r.groups),
        or_dash(&r.node_name_patterns),
        r.description
    )
}

impl TokenCommand {
    /// Runs the subcommand; returns the process exit code.
    pub fn run(self) -> i32 {
        match self.execute(&mut std::io::stdout().lock()) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "token command failed");
                e.exit_code()
            }
        }
    }

    fn execute(self, out: &mut dyn Write) -> Result<(), TokenCmdError> {
        match self {
            TokenCommand::GenerateStatic => {
                let token = static_tokens::generate_static_token()?;
                writeln!(out, "{}", token.as_str()).map_err(TokenCmdError::Output)
            }
            TokenCommand::Create {
                config,
                ttl,
                groups,
                description,
                node_name_patterns,
            } => {
                let tokens = open(&config)?;
                let now = SystemTime::now();
                let (id, token) =
                    tokens.create(ttl, groups, description, node_name_patterns, now)?;
                tracing::info!(%id, ttl = %humantime::format_duration(ttl), "bootstrap token created");
                writeln!(out, "{}", token.expose_secret()).map_err(TokenCmdError::Output)
            }
            TokenCommand::List { config } => {
                writeln!(out, "ID\tEXPIRES\tGROUPS\tNODE-NAME-PATTERNS\tDESCRIPTION")
                    .map_err(TokenCmdError::Output)?;
                let now = SystemTime::now();
                for r in open(&config)?.list()? {
                    writeln!(out, "{}", list_line(&r, now)).map_err(TokenCmdError::Output)?;
                }
                Ok(())
            }
            TokenCommand::Delete { config, id } => {
                let id = BootstrapTokenId::parse(&id).ok_or(TokenCmdError::BadId)?;
                if !open(&config)?.delete(&id)? {
                    return Err(TokenCmdError::NotFound(id));
                }
                tracing::info!(%id, "bootstrap token deleted");
                Ok(())
            }
        }
    }
}

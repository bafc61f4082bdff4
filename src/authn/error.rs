//! Errors of the authentication layer (configuration and token-store problems). A failed
//! authentication of a request is not an error: it is [`super::AuthnOutcome::Rejected`].

use std::path::PathBuf;
use std::time::Duration;

/// What is wrong with one line of the static token file. Never carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenLineProblem {
    /// Fewer than the three required columns `token,user,uid`.
    #[error("fewer than 3 columns (token,user,uid)")]
    TooFewColumns,
    /// More columns than the bound.
    #[error("more than {max} columns")]
    TooManyColumns {
        /// The bound.
        max: usize,
    },
    /// The token column is empty.
    #[error("empty token")]
    EmptyToken,
    /// The user column is empty.
    #[error("empty user")]
    EmptyUser,
    /// The token holds characters that cannot appear in an HTTP bearer token.
    #[error("token has characters other than printable ASCII")]
    TokenCharacters,
    /// The token is longer than the bound.
    #[error("token longer than {max} bytes")]
    TokenTooLong {
        /// The bound.
        max: usize,
    },
    /// The same token appears on an earlier line.
    #[error("duplicate token (first on line {first_line})")]
    DuplicateToken {
        /// The line that holds it first.
        first_line: u64,
    },
    /// The line is not valid CSV.
    #[error("not valid CSV")]
    Csv,
}

/// Errors of the authentication layer.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// The static token file could not be read.
    #[error("cannot read token file {path}: {source}")]
    TokenFileRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the static token file is malformed (the token itself is never shown).
    #[error("token file {path} line {line}: {problem}")]
    TokenFileLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        problem: TokenLineProblem,
    },
    /// The token file has more lines than the bound.
    #[error("token file {path} has more than {max} tokens")]
    TokenFileTooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: usize,
    },
    /// The bootstrap-token table could not be opened, read or written.
    #[error("bootstrap token store: {op}: {source}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The store file could not be opened for the bootstrap-token table.
    #[error("cannot open the store for bootstrap tokens: {0}")]
    Store(crate::store::StoreError),
    /// The bootstrap-token table was written by a newer kubesigner.
    #[error("bootstrap token table has schema version {found}, this build knows up to {known}")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A stored bootstrap-token row cannot be decoded.
    #[error("bootstrap token {id}: stored row is corrupt ({field})")]
    CorruptRow {
        /// The token id.
        id: String,
        /// The column.
        field: &'static str,
    },
    /// An extra group for a bootstrap token is not `system:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9]`.
    #[error(
        "invalid bootstrap token group {group:?}: must match system:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9]"
    )]
    InvalidGroup {
        /// The group.
        group: String,
    },
    /// A node-name pattern is not a valid glob.
    #[error("invalid node-name pattern {pattern:?}: {source}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// The glob parser's error.
        source: globset::Error,
    },
    /// A token's time to live is zero or beyond the bound.
    #[error("bootstrap token ttl {ttl:?} out of range (1s ..= {max:?})")]
    InvalidTtl {
        /// Requested.
        ttl: Duration,
        /// The bound.
        max: Duration,
    },
    /// A list or text given for a token is longer than its bound.
    #[error("bootstrap token {what}: {len} exceeds the limit of {max}")]
    TooLong {
        /// Which input.
        what: &'static str,
        /// Given.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The system random generator failed.
    #[error("system random generator failed")]
    Random,
    /// No free token id was found after several tries.
    #[error("no free bootstrap token id after {tries} tries")]
    IdExhausted {
        /// How many ids were tried.
        tries: u32,
    },
}

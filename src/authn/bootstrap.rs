//! Bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`, kubeadm's format), kept in their own table in
//! `data_dir/kubesigner.db` (the store's SQLite file; WAL). Only a salted SHA-256 of the secret
//! is stored; the secret is compared in constant time. This module owns the `bootstrap_tokens`
//! table and its `schema_version` row.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::clock::{from_unix_checked, unix_secs};

pub use super::bootstrap_id::{
    BOOTSTRAPPERS_GROUP, BootstrapToken, BootstrapTokenId, is_valid_extra_group,
};
use super::bootstrap_id::{TOKEN_ALPHABET, TOKEN_ID_LEN, TOKEN_SECRET_LEN};
use super::error::AuthnError;
use crate::store::StoreError;

/// Longest bootstrap-token lifetime accepted at create (a year; the secret holds ≈ 83 bits, so
/// tokens should be short-lived — the default is 24 h).
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// Most extra groups per token (kubeadm sets one or two; a bound keeps rows small).
pub const MAX_GROUPS: usize = 32;
/// Most node-name patterns per token.
pub const MAX_PATTERNS: usize = 64;
/// Longest node-name pattern (a DNS name is ≤ 253 bytes, plus room for glob syntax).
pub const MAX_PATTERN_LEN: usize = 512;
/// Longest description (free text shown by `token list`).
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// Bytes of salt per token hash.
const SALT_LEN: usize = 16;
/// Domain separation for the secret hash, so these hashes are useless elsewhere.
const HASH_DOMAIN: &[u8] = b"kubesigner bootstrap-token secret v1\0";
/// How many random ids to try before giving up on a collision streak.
const ID_TRIES: u32 = 16;
/// One bootstrap token as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapTokenRecord {
    /// The public id.
    pub id: BootstrapTokenId,
    /// When it was created.
    pub created: SystemTime,
    /// When it stops authenticating.
    pub expires: SystemTime,
    /// Extra groups (each `system:bootstrappers:…`); `system:bootstrappers` is always added.
    pub groups: Vec<String>,
    /// Free text.
    pub description: String,
    /// Node-name glob patterns this token may bootstrap; empty = any node name.
    pub node_name_patterns: Vec<String>,
}

/// Result of checking a presented bootstrap token.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// No token with that id exists.
    UnknownId,
    /// The id exists but the secret is wrong.
    WrongSecret,
    /// The token has expired.
    Expired,
    /// The token is valid.
    Valid(BootstrapTokenRecord),
}

/// The bootstrap-token table. `Send + Sync`; one connection behind a mutex (lookups are one
/// indexed primary-key read).
#[derive(Debug)]
pub struct BootstrapTokens {
    conn: Mutex<Connection>,
}

fn db_err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> AuthnError {
    move |source| AuthnError::Database { op, source }
}

fn secret_hash(salt: &[u8], secret: &str) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(HASH_DOMAIN);
    ctx.update(salt);
    ctx.update(secret.as_bytes());
    ctx.finish()
}

fn random_token_text(len: usize) -> Result<String, AuthnError> {
    // Rejection sampling: bytes ≥ 252 (= 7 × 36) are dropped so every character is uniform.
    const LIMIT: u8 = 252;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| AuthnError::Random)?;
        for &b in buf.iter().filter(|&&b| b < LIMIT) {
            if out.len() == len {
                break;
            }
            let idx = usize::from(b) % TOKEN_ALPHABET.len();
            if let Some(&c) = TOKEN_ALPHABET.get(idx) {
                out.push(char::from(c));
            }
        }
    }
    Ok(out)
}

/// Checks the inputs of [`BootstrapTokens::create`].
fn validate_create(
    ttl: Duration,
    groups: &[String],
    description: &str,
    patterns: &[String],
) -> Result<(), AuthnError> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(AuthnError::InvalidTtl { ttl, max: MAX_TTL });
    }
    let bound = |what, len, max| {
        if len > max {
            Err(AuthnError::TooLong { what, len, max })
        } else {
            Ok(())
        }
    };
    bound("groups", groups.len(), MAX_GROUPS)?;
    bound("node-name patterns", patterns.len(), MAX_PATTERNS)?;
    bound("description", description.len(), MAX_DESCRIPTION_LEN)?;
    if let Some(g) = groups.iter().find(|g| !is_valid_extra_group(g)) {
        return Err(AuthnError::InvalidGroup { group: g.clone() });
    }
    for p in patterns {
        bound("node-name pattern", p.len(), MAX_PATTERN_LEN)?;
        globset::Glob::new(p).map_err(|source| AuthnError::InvalidPattern {
            pattern: p.clone(),
            source,
        })?;
    }
    Ok(())
}

impl BootstrapTokens {
    /// Opens (creating if needed) the SQLite file at `db_path` and brings the
    /// `bootstrap_tokens` table to the current schema.
    pub fn open(db_path: &Path) -> Result<Self, AuthnError> {
        let conn =
            crate::store::bootstrap_tokens::open_connection(db_path).map_err(|e| match e {
                StoreError::SchemaTooNew { found, known, .. } => AuthnError::SchemaTooNew {
                    found: found.into(),
                    known: known.into(),
                },
                StoreError::Sqlite(source) => AuthnError::Database { op: "open", source },
                other => AuthnError::Store(other),
            })?;
        Ok(BootstrapTokens {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates a token valid for `ttl` from `now`. Returns its id and the whole token
    /// `id.secret`, which is shown once and never stored.
    pub fn create(
        &self,
        ttl: Duration,
        groups: Vec<String>,
        description: String,
        node_name_patterns: Vec<String>,
        now: SystemTime,
    ) -> Result<(BootstrapTokenId, SecretString), AuthnError> {
        validate_create(ttl, &groups, &description, &node_name_patterns)?;
        let expires = now
            .checked_add(ttl)
            .ok_or(AuthnError::InvalidTtl { ttl, max: MAX_TTL })?;
        let mut groups = groups;
        groups.sort();
        groups.dedup();
        let groups_json = serde_json::to_string(&groups).unwrap_or_default();
        let patterns_json = serde_json::to_string(&node_name_patterns).unwrap_or_default();
        let mut salt = [0u8; SALT_LEN];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| AuthnError::Random)?;
        let secret = SecretString::from(random_token_text(TOKEN_SECRET_LEN)?);
        let hash = secret_hash(&salt, secret.expose_secret());
        let conn = self.conn();
        for _ in 0..ID_TRIES {
            let Some(id) = BootstrapTokenId::parse(&random_token_text(TOKEN_ID_LEN)?) else {
                continue;
            };
            let tx = conn
                .unchecked_transaction()
                .map_err(db_err("insert token"))?;
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO bootstrap_tokens (id, salt, secret_hash, created_unix,
                     expires_unix, groups_json, description, patterns_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id.as_str(),
                        &salt[..],
                        hash.as_ref(),
                        unix_secs(now),
                        unix_secs(expires),
                        groups_json,
                        description,
                        patterns_json
                    ],
                )
                .map_err(db_err("insert token"))?;
            if inserted == 1 {
                audit(&tx, crate::audit::Kind::TokenCreate, &id, "created")?;
                tx.commit().map_err(db_err("insert token"))?;
                let token = SecretString::from(format!("{id}.{}", secret.expose_secret()));
                return Ok((id, token));
            }
        }
        Err(AuthnError::IdExhausted { tries: ID_TRIES })
    }

    /// Every token, ordered by id; never the secret.
    pub fn list(&self) -> Result<Vec<BootstrapTokenRecord>, AuthnError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, created_unix, expires_unix, groups_json, description, patterns_json
                 FROM bootstrap_tokens ORDER BY id",
            )
            .map_err(db_err("list tokens"))?;
        let rows = stmt
            .query_map([], RawRecord::from_row)
            .map_err(db_err("list tokens"))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(db_err("list tokens"))?.decode()?);
        }
        Ok(out)
    }

    /// Deletes a token; `false` when there was none with that id.
    pub fn delete(&self, id: &BootstrapTokenId) -> Result<bool, AuthnError> {
        let conn = self.conn();
        let tx = conn
            .unchecked_transaction()
            .map_err(db_err("delete token"))?;
        let n = tx
            .execute("DELETE FROM bootstrap_tokens WHERE id = ?1", [id.as_str()])
            .map_err(db_err("delete token"))?;
        if n > 0 {
            audit(&tx, crate::audit::Kind::TokenDelete, id, "deleted")?;
        }
        tx.commit().map_err(db_err("delete token"))?;
        Ok(n > 0)
    }

    /// Checks a presented token: one primary-key read, a salted hash, a constant-time compare.
    pub(crate) fn lookup(
        &self,
        token: &BootstrapToken,
        now: SystemTime,
    ) -> Result<Lookup, AuthnError> {
        let conn = self.conn();
        // Prepared once per connection: every bootstrap-authenticated request runs it.
        let row = conn
            .prepare_cached(
                "SELECT id, created_unix, expires_unix, groups_json, description, patterns_json,
                 salt, secret_hash FROM bootstrap_tokens WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([token.id.as_str()], |r| {
                    Ok((
                        RawRecord::from_row(r)?,
                        r.get::<_, Vec<u8>>(6)?,
                        r.get::<_, Vec<u8>>(7)?,
                    ))
                })
                .optional()
            })
            .map_err(db_err("look up token"))?;
        drop(conn);
        let Some((raw, salt, stored)) = row else {
            return Ok(Lookup::UnknownId);
        };
        let presented = secret_hash(&salt, token.secret.expose_secret());
        if !bool::from(presented.as_ref().ct_eq(stored.as_slice())) {
            return Ok(Lookup::WrongSecret);
        }
        let record = raw.decode()?;
        if now >= record.expires {
            return Ok(Lookup::Expired);
        }
        Ok(Lookup::Valid(record))
    }
}

/// A row as read, before decoding the JSON columns.
struct RawRecord {
    id: String,
    created: i64,
    expires: i64,
    groups_json: String,
    description: String,
    patterns_json: String,
}

impl RawRecord {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
        Ok(RawRecord {
            id: r.get(0)?,
            created: r.get(1)?,
            expires: r.get(2)?,
            groups_json: r.get(3)?,
            description: r.get(4)?,
            patterns_json: r.get(5)?,
        })
    }

    fn decode(self) -> Result<BootstrapTokenRecord, AuthnError> {
        let corrupt = |field| AuthnError::CorruptRow {
            id: self.id.clone(),
            field,
        };
        let id = BootstrapTokenId::parse(&self.id).ok_or_else(|| corrupt("id"))?;
        let groups: Vec<String> =
            serde_json::from_str(&self.groups_json).map_err(|_| corrupt("groups_json"))?;
        let node_name_patterns: Vec<String> =
            serde_json::from_str(&self.patterns_json).map_err(|_| corrupt("patterns_json"))?;
        Ok(BootstrapTokenRecord {
            id,
            created: from_unix_checked(self.created).ok_or_else(|| corrupt("created_unix"))?,
            expires: from_unix_checked(self.expires).ok_or_else(|| corrupt("expires_unix"))?,
            groups,
            description: self.description,
            node_name_patterns,
        })
    }
}

/// Records a token change in the audit chain, in the change's transaction. The chain's table
/// belongs to the store (`store::Store::open` creates it; `kubesigner token` and `dev` open the
/// store first); a bare token database without it (unit tests) records nothing.
fn audit(
    conn: &Connection,
    kind: crate::audit::Kind,
    id: &BootstrapTokenId,
    outcome: &str,
) -> Result<(), AuthnError> {
    let has_log: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'",
            [],
            |r| r.get(0),
        )
        .map_err(db_err("audit"))?;
    if has_log {
        let actor = crate::audit::context::current()
            .map_or_else(|| "kubesigner-cli".to_owned(), |c| c.user);
        crate::audit::append(
            conn,
            &crate::audit::Entry {
                name: id.as_str(),
                actor: &actor,
                outcome: Some(outcome.to_owned()),
                ..crate::audit::Entry::new(kind)
            },
        )
        .map_err(db_err("audit"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

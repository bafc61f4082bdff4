//! The `bootstrap_tokens` table: its schema and migrations live here, with every other table's,
//! under the one migration system ([`super::schema::migrate_component`]). Its rows are read and
//! written by `authn::bootstrap` (which holds the secret hashing and the validation) on a
//! connection of its own that this module opens.

use std::path::Path;

use rusqlite::Connection;

use super::error::StoreError;
use super::schema;

/// The table's row in `schema_version`.
pub const COMPONENT: &str = "bootstrap_tokens";

/// The migrations; migration `i` brings the table from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE bootstrap_tokens (
        id TEXT PRIMARY KEY NOT NULL,
        salt BLOB NOT NULL,
        secret_hash BLOB NOT NULL,
        created_unix INTEGER NOT NULL,
        expires_unix INTEGER NOT NULL,
        groups_json TEXT NOT NULL,
        description TEXT NOT NULL,
        patterns_json TEXT NOT NULL
    ) STRICT;"];

/// Brings the table to the newest schema (the version table must exist).
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    schema::migrate_component(conn, COMPONENT, MIGRATIONS)
}

/// Opens the store file at `path` (creating it 0600 if missing, like the store) for the
/// bootstrap-token table, brought to the newest schema. Its commits sync (`FULL`): token
/// commands are rare and must be durable when they return.
pub fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = super::open_wal(path, "FULL")?;
    schema::create_version_table(&conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

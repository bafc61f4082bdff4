//! Versioned schema of the store's tables, with migrations from day one.
//!
//! Each component that owns tables in `kubesigner.db` keeps its own row in `schema_version`
//! (`component = 'store'` here; the bootstrap-token module owns `'bootstrap_tokens'`). Tables
//! this module does not know are never touched.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// This component's name in `schema_version`.
const COMPONENT: &str = "store";

/// The migrations, in order; migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: CSRs with indexed columns, the resourceVersion counter, node states, issued certificates
    // (which outlive CSR objects), and the audit table a later issue fills.
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
     INSERT INTO counters (name, value) VALUES ('resource_version', 0);
     CREATE TABLE csrs (
        name TEXT PRIMARY KEY,
        uid TEXT NOT NULL,
        resource_version INTEGER NOT NULL,
        signer_name TEXT NOT NULL,
        requester TEXT NOT NULL,
        subject_cn TEXT,
        node_name TEXT,
        phase TEXT NOT NULL,
        created_unix INTEGER NOT NULL,
        object TEXT NOT NULL
     );
     CREATE INDEX csrs_signer ON csrs (signer_name);
     CREATE INDEX csrs_requester ON csrs (requester);
     CREATE INDEX csrs_subject_cn ON csrs (subject_cn);
     CREATE INDEX csrs_node ON csrs (node_name);
     CREATE INDEX csrs_phase ON csrs (phase);
     CREATE TABLE nodes (
        name TEXT PRIMARY KEY,
        disabled INTEGER NOT NULL,
        updated_unix INTEGER NOT NULL
     );
     CREATE TABLE issued_certificates (
        serial TEXT PRIMARY KEY,
        node_name TEXT NOT NULL,
        csr_name TEXT NOT NULL,
        not_after_unix INTEGER NOT NULL,
        issued_unix INTEGER NOT NULL
     );
     CREATE INDEX issued_node ON issued_certificates (node_name, not_after_unix);
     CREATE TABLE audit_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_unix INTEGER NOT NULL,
        kind TEXT NOT NULL,
        csr_name TEXT NOT NULL,
        actor TEXT NOT NULL,
        resource_version INTEGER NOT NULL
     );",
    // 2: the audit log becomes a hash chain (crate::audit) and append-only.
    "ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
     ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
     CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    // 3: certificates written through `/status` in external-signing mode are audited with
    // their serial and fingerprint (NULL on every other record).
    "ALTER TABLE audit_events ADD COLUMN certificate_serial TEXT;
     ALTER TABLE audit_events ADD COLUMN certificate_sha256 TEXT;",
    // 4: audit records carry groups, request id, requested subject/SANs, serial, outcome and
    // checkpoints (crate::audit), as one JSON text.
    "ALTER TABLE audit_events ADD COLUMN extra TEXT NOT NULL DEFAULT '';",
    // 5: no query filters on the requester or the subject CN (lists filter on signer, node and
    // phase); their indexes only cost two index pages per create.
    "DROP INDEX csrs_requester;
     DROP INDEX csrs_subject_cn;",
    // 6: the per-node pending count runs on every create. With an index on the node alone and
    // one on the phase alone, SQLite searched the phase index: every pending CSR of every node
    // was read per create (quadratic in a storm held for manual approval). One index on
    // (node, phase) answers it and every node-name filter.
    "CREATE INDEX csrs_node_phase ON csrs (node_name, phase);
     DROP INDEX csrs_node;",
];

/// Creates the version table if needed and applies every pending migration, each in its own
/// transaction together with its version bump.
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    create_version_table(conn)?;
    migrate_component(conn, COMPONENT, MIGRATIONS)
}

/// The table holding each component's schema version (one row per component).
pub(super) fn create_version_table(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);",
    )?;
    Ok(())
}

/// Applies `component`'s pending `migrations` (its version is its count applied so far), each in
/// its own transaction together with its version bump; returns the version reached. Refuses a
/// store written by a newer kubesigner.
pub(super) fn migrate_component(
    conn: &mut Connection,
    component: &str,
    migrations: &[&str],
) -> Result<u32, StoreError> {
    let current: u32 = conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            params![component],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let known = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            component: component.to_owned(),
            found: current,
            known,
        });
    }
    for (version, sql) in (current..known).zip(migrations.iter().skip(current as usize)) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES (?1, ?2)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            params![component, version + 1],
        )?;
        tx.commit()?;
    }
    Ok(known)
}

#[cfg(test)]
mod tests;

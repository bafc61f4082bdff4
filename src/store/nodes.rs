//! Node states (disabled) and issued-certificate records, which outlive CSR objects: the
//! approval rule "no unexpired certificate already issued for that node" reads them.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;

/// A certificate the appliance issued, recorded in the same transaction as `status.certificate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRecord {
    /// The node the certificate names (`system:node:<name>`).
    pub node_name: String,
    /// Serial number, lower-case hex.
    pub serial_hex: String,
    /// NotAfter, seconds since the epoch.
    pub not_after_unix: i64,
    /// When it was issued, seconds since the epoch.
    pub issued_unix: i64,
}

/// What the store knows about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeState {
    /// An operator disabled the node (`kubesigner node disable`).
    pub disabled: bool,
    /// A certificate issued for the node has not expired yet.
    pub unexpired_certificate: bool,
    /// NotAfter (seconds since the epoch) of the latest-expiring certificate issued for the
    /// node, if any is recorded.
    pub latest_not_after_unix: Option<i64>,
    /// The peer address of the node's first bootstrap CSR, when recorded (trust on first use).
    pub first_bootstrap_address: Option<std::net::IpAddr>,
}

pub(super) fn insert_issued(
    tx: &Transaction<'_>,
    rec: &IssuedRecord,
    csr_name: &str,
) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO issued_certificates (serial, node_name, csr_name, not_after_unix, issued_unix)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        rec.serial_hex,
        rec.node_name,
        csr_name,
        rec.not_after_unix,
        rec.issued_unix
    ])?;
    Ok(())
}

pub(super) fn set_disabled(
    conn: &Connection,
    node: &str,
    disabled: bool,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO nodes (name, disabled, updated_unix) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET disabled = excluded.disabled,
                                         updated_unix = excluded.updated_unix",
        params![node, disabled, now],
    )?;
    Ok(())
}

pub(super) fn forget(conn: &mut Connection, node: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let a = tx.execute("DELETE FROM nodes WHERE name = ?1", params![node])?;
    let b = tx.execute(
        "DELETE FROM issued_certificates WHERE node_name = ?1",
        params![node],
    )?;
    let c = super::first_address::delete(&tx, node)?;
    tx.commit()?;
    Ok(a + b + c > 0)
}

/// The latest NotAfter recorded for a node. The CAST matters: with a bare `?1` against the
/// `(node_name, not_after_unix)` index, SQLite (built with STAT4) marks the statement as
/// depending on the bound value and re-parses it whenever the node name changes, which was
/// every create (6 % of the server's CPU under load).
pub(super) const LATEST_NOT_AFTER: &str =
    "SELECT MAX(not_after_unix) FROM issued_certificates WHERE node_name = CAST(?1 AS TEXT)";

pub(super) fn state(conn: &Connection, node: &str, now: i64) -> Result<NodeState, StoreError> {
    // Both run for every create that names a node: prepared once per connection.
    let disabled: Option<bool> = conn
        .prepare_cached("SELECT disabled FROM nodes WHERE name = ?1")?
        .query_row(params![node], |r| r.get(0))
        .optional()?;
    let latest: Option<i64> = conn
        .prepare_cached(LATEST_NOT_AFTER)?
        .query_row(params![node], |r| r.get(0))?;
    Ok(NodeState {
        disabled: disabled.unwrap_or(false),
        unexpired_certificate: latest.is_some_and(|t| t > now),
        latest_not_after_unix: latest,
        first_bootstrap_address: super::first_address::get(conn, node)?,
    })
}

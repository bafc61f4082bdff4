//! Trust on first use (`[issuance] record_first_bootstrap_address`): the peer IP of the
//! connection that created a node's first bootstrap client CSR, kept per node. The approver
//! counts it as an inventory address of that node for serving certificates.
//!
//! The table belongs to its own component in `schema_version` (`node_first_address`), so its
//! migrations never collide with the CSR store's. A row is written only while the node is
//! unknown to the store (no node state, no issued certificate, no recorded address) and is
//! never overwritten; `kubesigner node forget` deletes it with the node's other records.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};

use super::{AuditEvent, Store, StoreError, current_rv, record, unix_now};

/// This component's name in `schema_version`.
const COMPONENT: &str = "node_first_address";

/// The migrations of this component, in order (see `schema.rs` for the scheme).
const MIGRATIONS: &[&str] = &["CREATE TABLE node_first_addresses (
        name TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        recorded_unix INTEGER NOT NULL
     );"];

/// Creates or upgrades the table (each migration in one transaction with its version bump).
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    super::schema::migrate_component(conn, COMPONENT, MIGRATIONS).map(|_| ())
}

/// The recorded address of `node`, if any. A value that no longer parses counts as none.
pub(super) fn get(conn: &Connection, node: &str) -> Result<Option<IpAddr>, StoreError> {
    // Runs for every create that names a node: prepared once per connection.
    let text: Option<String> = conn
        .prepare_cached("SELECT address FROM node_first_addresses WHERE name = ?1")?
        .query_row(params![node], |r| r.get(0))
        .optional()?;
    Ok(text.and_then(|t| t.parse().ok()))
}

/// Deletes the recorded address of `node` (inside `forget`'s transaction).
pub(super) fn delete(conn: &Connection, node: &str) -> Result<usize, rusqlite::Error> {
    conn.execute(
        "DELETE FROM node_first_addresses WHERE name = ?1",
        params![node],
    )
}

/// A node's first bootstrap address, to record with the approved CSR that brought it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstAddress {
    /// The node.
    pub node: String,
    /// The peer address of the connection that created the CSR.
    pub address: IpAddr,
}

/// Records `first.address` as the first bootstrap address of `first.node` inside `tx` if the
/// store knows nothing of the node yet (no state, no issued certificate, no address): run
/// before the create's issued-certificate record. Audited (`node-first-address`, the node in
/// `csr_name`). Returns whether it was recorded.
pub(super) fn record_in(
    tx: &rusqlite::Transaction<'_>,
    first: &FirstAddress,
    rv: u64,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO node_first_addresses (name, address, recorded_unix)
             SELECT ?1, ?2, ?3
             WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE name = ?1)
               AND NOT EXISTS (SELECT 1 FROM issued_certificates WHERE node_name = ?1)
             ON CONFLICT(name) DO NOTHING",
        )?
        .execute(params![first.node, first.address.to_string(), unix_now()])?;
    if n == 0 {
        return Ok(false);
    }
    record(
        tx,
        &AuditEvent {
            kind: crate::audit::Kind::NodeFirstAddress,
            csr_name: &first.node,
            actor: "kubesigner",
            resource_version: rv,
            certificate: None,
        },
    )?;
    tracing::info!(node = %first.node, address = %first.address, "first bootstrap address recorded (trust on first use)");
    Ok(true)
}

impl Store {
    /// Records `address` as the first bootstrap address of `node` on its own (see
    /// [`record_in`]; the create path records it in the approved CSR's transaction).
    pub fn record_first_bootstrap_address(
        &self,
        node: &str,
        address: IpAddr,
    ) -> Result<bool, StoreError> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        let rv = current_rv(&tx)?;
        let first = FirstAddress {
            node: node.to_owned(),
            address,
        };
        if !record_in(&tx, &first, rv)? {
            return Ok(false);
        }
        tx.commit()?;
        let seq = self.sync.committed()?;
        drop(st);
        self.sync.wait_durable(seq)?;
        Ok(true)
    }

    /// The recorded first bootstrap address of `node`, if any.
    pub fn first_bootstrap_address(&self, node: &str) -> Result<Option<IpAddr>, StoreError> {
        let st = self.lock()?;
        get(&st.conn, node)
    }
}

#[cfg(test)]
mod tests;

//! `coordination.k8s.io/v1` Leases (leader election of `kubesigner controller`
//! replicas against an external-signing appliance). A table of its own, with its own
//! resourceVersion counter and its own row in `schema_version` (component `leases`), in the
//! same database and under the same lock as the CSRs. Writes are durable (group sync) before
//! they return, so a lease never goes back in time after a crash it was acknowledged before.

use k8s_openapi::api::coordination::v1::Lease;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Store, StoreError};

/// This component's name in `schema_version`.
const COMPONENT: &str = "leases";
/// The counter row of lease resourceVersions.
const COUNTER: &str = "lease_resource_version";
/// Most leases stored: leader election needs one per controller deployment; the bound keeps a
/// client with lease rights from filling the disk.
pub const MAX_LEASES: usize = 1000;

/// Migrations of this component, in order.
const MIGRATIONS: &[&str] = &["CREATE TABLE leases (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        resource_version INTEGER NOT NULL,
        object TEXT NOT NULL,
        PRIMARY KEY (namespace, name)
     );
     INSERT OR IGNORE INTO counters (name, value) VALUES ('lease_resource_version', 0);"];

/// Why a lease write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such lease (404).
    #[error("lease {namespace}/{name} not found")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A lease of that name exists (409 AlreadyExists).
    #[error("lease {namespace}/{name} already exists")]
    AlreadyExists {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The caller's resourceVersion is not the stored one (409 Conflict).
    #[error("lease {namespace}/{name}: resourceVersion {given} is stale (now {current})")]
    Conflict {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The RV the caller sent.
        given: u64,
        /// The stored RV.
        current: u64,
    },
    /// [`MAX_LEASES`] are stored already.
    #[error("at most {max} leases may be stored")]
    TooMany {
        /// The limit.
        max: usize,
    },
}

impl From<rusqlite::Error> for LeaseError {
    fn from(e: rusqlite::Error) -> Self {
        LeaseError::Store(StoreError::Sqlite(e))
    }
}

/// Creates the table and counter (called when the store opens).
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    super::schema::migrate_component(conn, COMPONENT, MIGRATIONS).map(|_| ())
}

fn decode(name: &str, text: &str) -> Result<Lease, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Decode {
        name: name.to_owned(),
        source,
    })
}

fn counter(conn: &Connection) -> Result<u64, StoreError> {
    let v: i64 = conn.query_row(
        "SELECT value FROM counters WHERE name = ?1",
        params![COUNTER],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(v).unwrap_or(0))
}

fn bump(tx: &Transaction<'_>) -> Result<u64, rusqlite::Error> {
    tx.query_row(
        "UPDATE counters SET value = value + 1 WHERE name = ?1 RETURNING value",
        params![COUNTER],
        |r| r.get::<_, i64>(0),
    )
    .map(|v| u64::try_from(v).unwrap_or(0))
}

fn stored(tx: &Transaction<'_>, ns: &str, name: &str) -> Result<Option<Lease>, StoreError> {
    let text: Option<String> = tx
        .query_row(
            "SELECT object FROM leases WHERE namespace = ?1 AND name = ?2",
            params![ns, name],
            |r| r.get(0),
        )
        .optional()?;
    text.map(|t| decode(name, &t)).transpose()
}

fn write(tx: &Transaction<'_>, ns: &str, name: &str, lease: &mut Lease) -> Result<(), LeaseError> {
    let rv = bump(tx)?;
    lease.metadata.resource_version = Some(rv.to_string());
    let text = serde_json::to_string(lease).map_err(StoreError::Encode)?;
    tx.execute(
        "INSERT INTO leases (namespace, name, resource_version, object) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(namespace, name) DO UPDATE SET resource_version = excluded.resource_version,
                                                    object = excluded.object",
        params![ns, name, i64::try_from(rv).unwrap_or(i64::MAX), text],
    )?;
    Ok(())
}

fn key(lease: &Lease) -> (String, String) {
    (
        lease.metadata.namespace.clone().unwrap_or_default(),
        lease.metadata.name.clone().unwrap_or_default(),
    )
}

impl Store {
    /// After a lease transaction committed: releases the lock and returns once it is durable.
    fn lease_durable(&self, st: std::sync::MutexGuard<'_, super::State>) -> Result<(), StoreError> {
        let seq = self.sync.committed()?;
        drop(st);
        self.sync.wait_durable(seq)?;
        Ok(())
    }

    /// Reads one lease.
    pub fn lease_get(&self, ns: &str, name: &str) -> Result<Option<Lease>, StoreError> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        stored(&tx, ns, name)
    }

    /// Every lease (of one namespace, or all), ordered by namespace and name, with the current
    /// lease resourceVersion.
    pub fn lease_list(&self, ns: Option<&str>) -> Result<(Vec<Lease>, u64), StoreError> {
        let st = self.lock()?;
        let mut stmt = st.conn.prepare_cached(
            "SELECT name, object FROM leases WHERE (?1 IS NULL OR namespace = ?1)
             ORDER BY namespace, name",
        )?;
        let rows = stmt.query_map(params![ns], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, text) = row?;
            out.push(decode(&name, &text)?);
        }
        Ok((out, counter(&st.conn)?))
    }

    /// Stores a new lease (namespace and name set by the caller); sets its resourceVersion.
    pub fn lease_create(&self, mut lease: Lease) -> Result<Lease, LeaseError> {
        let (ns, name) = key(&lease);
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        if stored(&tx, &ns, &name)?.is_some() {
            return Err(LeaseError::AlreadyExists {
                namespace: ns,
                name,
            });
        }
        let count: i64 = tx.query_row("SELECT COUNT(*) FROM leases", [], |r| r.get(0))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_LEASES {
            return Err(LeaseError::TooMany { max: MAX_LEASES });
        }
        write(&tx, &ns, &name, &mut lease)?;
        tx.commit()?;
        self.lease_durable(st)?;
        Ok(lease)
    }

    /// Replaces a lease. With `expected_rv`, the stored resourceVersion must equal it (409
    /// otherwise). The server-owned metadata (uid, creationTimestamp) is kept from the stored
    /// object.
    pub fn lease_replace(
        &self,
        expected_rv: Option<u64>,
        mut lease: Lease,
    ) -> Result<Lease, LeaseError> {
        let (ns, name) = key(&lease);
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        let Some(old) = stored(&tx, &ns, &name)? else {
            return Err(LeaseError::NotFound {
                namespace: ns,
                name,
            });
        };
        precondition(&old, expected_rv, &ns, &name)?;
        lease.metadata.uid = old.metadata.uid;
        lease.metadata.creation_timestamp = old.metadata.creation_timestamp;
        write(&tx, &ns, &name, &mut lease)?;
        tx.commit()?;
        self.lease_durable(st)?;
        Ok(lease)
    }

    /// Deletes a lease (only at resourceVersion `expected_rv` when given: a delete precondition,
    /// else 409 as kube-apiserver); returns its last state.
    pub fn lease_delete(
        &self,
        ns: &str,
        name: &str,
        expected_rv: Option<u64>,
    ) -> Result<Lease, LeaseError> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        let Some(old) = stored(&tx, ns, name)? else {
            return Err(LeaseError::NotFound {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            });
        };
        precondition(&old, expected_rv, ns, name)?;
        tx.execute(
            "DELETE FROM leases WHERE namespace = ?1 AND name = ?2",
            params![ns, name],
        )?;
        bump(&tx)?;
        tx.commit()?;
        self.lease_durable(st)?;
        Ok(old)
    }
}

/// A write's resourceVersion precondition against the stored lease: none, or equal (409
/// otherwise), for replace and delete alike.
fn precondition(
    stored: &Lease,
    expected_rv: Option<u64>,
    ns: &str,
    name: &str,
) -> Result<(), LeaseError> {
    let current = stored
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    match expected_rv {
        Some(given) if given != current => Err(LeaseError::Conflict {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            given,
            current,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;

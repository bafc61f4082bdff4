//! The durable CSR store: SQLite (WAL, group commit: see [`group_sync`]) in
//! `data_dir/kubesigner.db`.
//!
//! Every write is one transaction that also bumps the global resourceVersion counter; a write
//! returns (and so is acknowledged to a client) only after its commit. Committed changes are
//! published on the [`feed`] for watches. All methods block: call them from a blocking thread
//! (`tokio::task::spawn_blocking`), never on the async runtime.

mod audit_hook;
pub mod backup;
mod batch;
pub mod bootstrap_tokens;
mod checkpoint;
mod data_dir_lock;
mod error;
mod external;
pub mod feed;
mod first_address;
mod group_sync;
pub mod leases;
mod nodes;
pub mod private;
mod scan;
mod schema;
mod write;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::audit::Kind;
use crate::clock::unix_now;
use crate::conditions::{ConditionType, has_certificate, has_condition};

pub use batch::PendingCreate;
pub use data_dir_lock::{DataDirLockError, LOCK_FILE, lock_data_dir};
pub use error::{StoreError, UpdateError};
pub use feed::{Event, EventKind, Subscription};
pub use first_address::FirstAddress;
pub use nodes::{IssuedRecord, NodeState};
pub use scan::{ListQuery, Row};
pub use write::{Creation, Stored};

use audit_hook::{outcome, record, record_with};
use feed::Feed;
use group_sync::GroupSync;

/// File name of the database inside the data dir (shared with the bootstrap-token table).
pub const DB_FILE: &str = "kubesigner.db";

/// How long a writer waits for a lock held by another connection (the bootstrap-token module,
/// `kubesigner node` run while the server runs) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (about 20 distinct statements run on the request
/// paths; room for a few more).
const STATEMENT_CACHE: usize = 64;

/// Indexed facts about a CSR that the caller derived from the parsed request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrIndex {
    /// Subject CN of the PKCS#10 request, when it parsed.
    pub subject_cn: Option<String>,
    /// Node name when the CN is `system:node:<name>`.
    pub node_name: Option<String>,
}

/// Who changed something and why, for the audit hook.
#[derive(Debug, Clone, Copy)]
pub struct AuditEvent<'a> {
    /// What happened (create, approve, deny, issue, fail, delete, update).
    pub kind: crate::audit::Kind,
    /// The CSR.
    pub csr_name: &'a str,
    /// Who did it (username, or "kubesigner" for the appliance itself).
    pub actor: &'a str,
    /// The resourceVersion of the change.
    pub resource_version: u64,
    /// A certificate written through `/status` (external-signing mode).
    pub certificate: Option<CertificateNote<'a>>,
}

/// The audit facts of a certificate a client wrote through `/status`.
#[derive(Debug, Clone, Copy)]
pub struct CertificateNote<'a> {
    /// Leaf serial number, hex.
    pub serial_hex: &'a str,
    /// SHA-256 (hex) of the leaf's DER.
    pub sha256_hex: &'a str,
}

/// What a watch from "now" starts with: the current objects and the live receiver, taken
/// atomically.
#[derive(Debug)]
pub struct Snapshot {
    /// Every stored CSR, by name, with its indexed subject CN.
    pub objects: Vec<(CertificateSigningRequest, Option<String>)>,
    /// The resourceVersion of the snapshot.
    pub resource_version: u64,
    /// Changes after the snapshot.
    pub live: tokio::sync::broadcast::Receiver<Event>,
}

struct State {
    conn: Connection,
    feed: Feed,
}

/// The store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    state: Arc<Mutex<State>>,
    sync: Arc<GroupSync>,
    /// The CSR writer thread (creates are committed in batches).
    writer: Arc<batch::Writer>,
    /// A second connection for the reads every create makes before it is decided (the node's
    /// state, its pending count): WAL readers do not wait for the writer's batch to commit.
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// The lifecycle phase kept in an indexed column.
pub fn phase(csr: &CertificateSigningRequest) -> &'static str {
    let has = |t| has_condition(csr, t);
    if has(ConditionType::Denied) {
        "denied"
    } else if has(ConditionType::Failed) {
        "failed"
    } else if has_certificate(csr) {
        "issued"
    } else if has(ConditionType::Approved) {
        "approved"
    } else {
        "pending"
    }
}

fn decode(name: &str, text: &str) -> Result<CertificateSigningRequest, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Decode {
        name: name.to_owned(),
        source,
    })
}

fn bump_rv(tx: &Transaction<'_>) -> Result<u64, rusqlite::Error> {
    tx.prepare_cached(
        "UPDATE counters SET value = value + 1 WHERE name = 'resource_version' RETURNING value",
    )?
    .query_row([], |r| r.get::<_, i64>(0))
    .map(|v| u64::try_from(v).unwrap_or(0))
}

fn rv_of(csr: &CertificateSigningRequest) -> Option<u64> {
    csr.metadata.resource_version.as_deref()?.parse().ok()
}

fn created_unix(csr: &CertificateSigningRequest) -> i64 {
    csr.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) `data_dir/kubesigner.db`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        private::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        Self::open_file(&data_dir.join(DB_FILE))
    }

    /// Opens the database file at `path`.
    pub fn open_file(path: &Path) -> Result<Store, StoreError> {
        // Commits do not sync; writers wait for a group sync of the WAL instead.
        let mut conn = open_wal(path, "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every statement on a hot path is prepared once (`prepare_cached`); rusqlite's default
        // cache of 16 is smaller than their number, which would re-prepare them in turn.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn)?;
        first_address::migrate(&mut conn)?;
        leases::migrate(&mut conn)?;
        bootstrap_tokens::migrate(&mut conn)?;
        let rv = current_rv(&conn)?;
        let state = Arc::new(Mutex::new(State {
            conn,
            feed: Feed::new(rv),
        }));
        if checkpoint::spawn(path, Arc::downgrade(&state))? {
            // Checkpoints run on their own thread (`checkpoint`), not inside a writer's commit.
            let st = state.lock().map_err(|_| StoreError::Poisoned)?;
            st.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        let reader = Connection::open(path)?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let sync = Arc::new(GroupSync::new(path));
        let writer = batch::Writer::spawn(Arc::clone(&state), Arc::clone(&sync))
            .map_err(StoreError::WriterStart)?;
        Ok(Store {
            state,
            sync,
            writer: Arc::new(writer),
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The read connection: committed data, without waiting for the writer.
    fn read(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.reader.lock().map_err(|_| StoreError::Poisoned)
    }

    /// After a CSR transaction committed (its log not yet synced): takes its place in the group
    /// sync, publishes the event to watchers, releases the store lock, and returns only once the
    /// commit is on disk (group commit: one fsync serves every writer waiting on it).
    fn publish_durable(
        &self,
        mut st: MutexGuard<'_, State>,
        kind: EventKind,
        resource_version: u64,
        csr: CertificateSigningRequest,
        json: String,
        subject_cn: Option<String>,
    ) -> Result<Stored, StoreError> {
        let seq = self.sync.committed().map_err(StoreError::from)?;
        let stored = Stored {
            object: Arc::new(csr),
            json: Arc::from(json),
        };
        st.feed.publish(Event {
            kind,
            resource_version,
            object: Arc::clone(&stored.object),
            json: Arc::clone(&stored.json),
            subject_cn: subject_cn.map(Arc::from),
        });
        drop(st);
        self.sync.wait_durable(seq).map_err(StoreError::from)?;
        Ok(stored)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> Result<u64, StoreError> {
        let st = self.lock()?;
        current_rv(&st.conn)
    }

    /// Stores a new CSR (the caller has set name, uid, creationTimestamp, spec, empty status).
    /// Sets `metadata.resourceVersion`. Returns the stored object once committed.
    pub fn create(
        &self,
        csr: CertificateSigningRequest,
        index: &CsrIndex,
        actor: &str,
    ) -> Result<CertificateSigningRequest, StoreError> {
        let creation = Creation {
            index,
            actor,
            decided: &[],
            issued: None,
            requested: None,
            first_address: None,
        };
        self.create_with(csr, &creation)
            .map(|s| Arc::unwrap_or_clone(s.object))
    }

    /// Reads one CSR.
    pub fn get(&self, name: &str) -> Result<Option<CertificateSigningRequest>, StoreError> {
        let st = self.lock()?;
        let text: Option<String> = st
            .conn
            .prepare_cached("SELECT object FROM csrs WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?;
        text.map(|t| decode(name, &t)).transpose()
    }

    /// One CSR and its request's subject CN as indexed at create (from the one parse of the
    /// request: readers authorize with it and never parse the request again).
    pub fn get_indexed(
        &self,
        name: &str,
    ) -> Result<Option<(CertificateSigningRequest, Option<String>)>, StoreError> {
        let st = self.lock()?;
        let row: Option<(String, Option<String>)> = st
            .conn
            .prepare_cached("SELECT object, subject_cn FROM csrs WHERE name = ?1")?
            .query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(t, cn)| decode(name, &t).map(|c| (c, cn)))
            .transpose()
    }

    /// One CSR (if any) and the resourceVersion of that read, atomically (a list by name).
    pub fn get_with_rv(
        &self,
        name: &str,
    ) -> Result<(Option<CertificateSigningRequest>, u64), StoreError> {
        let st = self.lock()?;
        let text: Option<String> = st
            .conn
            .query_row(
                "SELECT object FROM csrs WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        let csr = text.map(|t| decode(name, &t)).transpose()?;
        Ok((csr, current_rv(&st.conn)?))
    }

    /// Every CSR, ordered by name, and the resourceVersion of that snapshot.
    pub fn list(&self) -> Result<(Vec<CertificateSigningRequest>, u64), StoreError> {
        let st = self.lock()?;
        Ok((list_all(&st.conn)?, current_rv(&st.conn)?))
    }

    /// CSRs that are approved (not denied/failed) and have no certificate yet: the signer's
    /// backlog, re-scanned at start-up and when the signer becomes ready.
    pub fn approved_unsigned(&self) -> Result<Vec<CertificateSigningRequest>, StoreError> {
        let st = self.lock()?;
        // Under the store lock: a search of the phase index, not a scan of every CSR.
        objects(&st.conn, APPROVED)
    }

    /// Read-modify-write of one CSR in a transaction. `expected_rv` (the caller's
    /// `metadata.resourceVersion`, when given) must match the stored one. The closure may refuse
    /// (nothing is written) or return an issued-certificate record to store in the same
    /// transaction. `kind` names the change for the audit hook.
    pub fn update<E>(
        &self,
        name: &str,
        expected_rv: Option<u64>,
        actor: &str,
        kind: Kind,
        change: impl FnOnce(&mut CertificateSigningRequest) -> Result<Option<IssuedRecord>, E>,
    ) -> Result<CertificateSigningRequest, UpdateError<E>> {
        self.update_audited(name, expected_rv, actor, kind, None, change)
    }

    /// [`Store::update`] whose audit record also names a certificate the change wrote.
    pub fn update_audited<E>(
        &self,
        name: &str,
        expected_rv: Option<u64>,
        actor: &str,
        kind: Kind,
        certificate: Option<CertificateNote<'_>>,
        change: impl FnOnce(&mut CertificateSigningRequest) -> Result<Option<IssuedRecord>, E>,
    ) -> Result<CertificateSigningRequest, UpdateError<E>> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        let row: Option<(String, Option<String>)> = tx
            .prepare_cached("SELECT object, subject_cn FROM csrs WHERE name = ?1")?
            .query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((text, subject_cn)) = row else {
            return Err(StoreError::NotFound {
                name: name.to_owned(),
            }
            .into());
        };
        let mut csr = decode(name, &text)?;
        let current = rv_of(&csr).unwrap_or(0);
        if let Some(given) = expected_rv
            && given != current
        {
            return Err(StoreError::Conflict {
                name: name.to_owned(),
                given,
                current,
            }
            .into());
        }
        let issued = change(&mut csr).map_err(UpdateError::Rejected)?;
        let rv = bump_rv(&tx)?;
        csr.metadata.resource_version = Some(rv.to_string());
        let text = serde_json::to_string(&csr).map_err(StoreError::Encode)?;
        tx.prepare_cached(
            "UPDATE csrs SET resource_version = ?2, phase = ?3, object = ?4 WHERE name = ?1",
        )?
        .execute(params![
            name,
            i64::try_from(rv).unwrap_or(i64::MAX),
            phase(&csr),
            text
        ])?;
        if let Some(rec) = &issued {
            nodes::insert_issued(&tx, rec, name)?;
        }
        record_with(
            &tx,
            &AuditEvent {
                kind,
                csr_name: name,
                actor,
                resource_version: rv,
                certificate,
            },
            outcome(&csr, kind, issued.as_ref()),
        )?;
        tx.commit()?;
        self.publish_durable(st, EventKind::Modified, rv, csr, text, subject_cn)
            .map(|s| Arc::unwrap_or_clone(s.object))
            .map_err(UpdateError::Store)
    }

    /// Deletes one CSR (issued-certificate records stay). Returns its last state.
    pub fn delete(&self, name: &str, actor: &str) -> Result<CertificateSigningRequest, StoreError> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        let row: Option<(String, Option<String>)> = tx
            .query_row(
                "DELETE FROM csrs WHERE name = ?1 RETURNING object, subject_cn",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((text, subject_cn)) = row else {
            return Err(StoreError::NotFound {
                name: name.to_owned(),
            });
        };
        let mut csr = decode(name, &text)?;
        let rv = bump_rv(&tx)?;
        record_with(
            &tx,
            &AuditEvent {
                kind: Kind::Delete,
                csr_name: name,
                actor,
                resource_version: rv,
                certificate: None,
            },
            crate::audit::Entry {
                outcome: Some("deleted".to_owned()),
                ..crate::audit::Entry::new(Kind::Delete)
            },
        )?;
        tx.commit()?;
        csr.metadata.resource_version = Some(rv.to_string());
        let text = serde_json::to_string(&csr).map_err(StoreError::Encode)?;
        self.publish_durable(st, EventKind::Deleted, rv, csr, text, subject_cn)
            .map(|s| Arc::unwrap_or_clone(s.object))
    }

    /// Starts a watch after resourceVersion `from`: replays the window, or 410 when too old.
    pub fn watch_from(&self, from: u64) -> Result<Subscription, StoreError> {
        let st = self.lock()?;
        st.feed.subscribe(from).ok_or(StoreError::Expired {
            requested: from,
            oldest: current_rv(&st.conn).unwrap_or(0),
        })
    }

    /// Starts a watch "from now": the current objects (sent as ADDED) and later changes.
    pub fn watch_now(&self) -> Result<Snapshot, StoreError> {
        let st = self.lock()?;
        let mut stmt = st
            .conn
            .prepare_cached("SELECT name, object, subject_cn FROM csrs ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut objects = Vec::new();
        for row in rows {
            let (name, text, cn) = row?;
            objects.push((decode(&name, &text)?, cn));
        }
        drop(stmt);
        Ok(Snapshot {
            objects,
            resource_version: current_rv(&st.conn)?,
            live: st.feed.subscribe_live(),
        })
    }

    /// How many pending CSRs (no Approved/Denied/Failed, no certificate) name this node.
    pub fn pending_for_node(&self, node: &str) -> Result<usize, StoreError> {
        let conn = self.read()?;
        pending_count(&conn, node)
    }

    /// Marks a node disabled (its CSRs are denied) or enabled again.
    pub fn set_node_disabled(&self, node: &str, disabled: bool) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        nodes::set_disabled(&tx, node, disabled, unix_now())?;
        let rv = current_rv(&tx)?;
        let kind = if disabled {
            Kind::NodeDisable
        } else {
            Kind::NodeEnable
        };
        // The audit record names the node in `csr_name` (the subject of the change).
        record_with(
            &tx,
            &AuditEvent {
                kind,
                csr_name: node,
                actor: "kubesigner-cli",
                resource_version: rv,
                certificate: None,
            },
            crate::audit::Entry {
                outcome: Some(if disabled { "disabled" } else { "enabled" }.to_owned()),
                ..crate::audit::Entry::new(kind)
            },
        )?;
        tx.commit()?;
        let seq = self.sync.committed()?;
        drop(st);
        Ok(self.sync.wait_durable(seq)?)
    }

    /// Forgets a node: its state and its issued-certificate records (so it may bootstrap
    /// again). Returns whether anything was known.
    pub fn forget_node(&self, node: &str) -> Result<bool, StoreError> {
        let mut st = self.lock()?;
        let known = nodes::forget(&mut st.conn, node)?;
        let seq = self.sync.committed()?;
        drop(st);
        self.sync.wait_durable(seq)?;
        Ok(known)
    }

    /// What the approver needs to know about a node at `now_unix`.
    pub fn node_state(&self, node: &str, now_unix: i64) -> Result<NodeState, StoreError> {
        let conn = self.read()?;
        let tx = conn.unchecked_transaction()?;
        let state = nodes::state(&tx, node, now_unix)?;
        tx.commit()?;
        Ok(state)
    }

    /// A node's pending CSR count and state, read in one snapshot (one read transaction for
    /// the four reads every create that names a node makes, not one each).
    pub fn node_view(&self, node: &str, now_unix: i64) -> Result<(usize, NodeState), StoreError> {
        let conn = self.read()?;
        let tx = conn.unchecked_transaction()?;
        let pending = pending_count(&tx, node)?;
        let state = nodes::state(&tx, node, now_unix)?;
        tx.commit()?;
        Ok((pending, state))
    }
}

fn pending_count(conn: &Connection, node: &str) -> Result<usize, StoreError> {
    let n: i64 = conn
        .prepare_cached(PENDING_FOR_NODE)?
        .query_row(params![node], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Opens the store file at `path` in WAL mode with `synchronous` set, creating it 0600 first if
/// missing (so the WAL and SHM files SQLite makes get 0600 too). Every writer of the file opens
/// it here: the store, and the bootstrap-token connection.
fn open_wal(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    private::prepare_db_file(path).map_err(|source| StoreError::DataDir {
        path: path.to_owned(),
        source,
    })?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(conn)
}

fn current_rv(conn: &Connection) -> Result<u64, StoreError> {
    let v: i64 = conn
        .prepare_cached("SELECT value FROM counters WHERE name = 'resource_version'")?
        .query_row([], |r| r.get(0))?;
    Ok(u64::try_from(v).unwrap_or(0))
}

/// Pending CSRs of one node (every create that names a node runs it).
const PENDING_FOR_NODE: &str =
    "SELECT count(*) FROM csrs WHERE node_name = ?1 AND phase = 'pending'";

/// Approved CSRs (the signer backlog).
const APPROVED: &str = "SELECT name, object FROM csrs WHERE phase = 'approved' ORDER BY name";

fn list_all(conn: &Connection) -> Result<Vec<CertificateSigningRequest>, StoreError> {
    objects(conn, "SELECT name, object FROM csrs ORDER BY name")
}

/// The decoded objects a `SELECT name, object ...` query returns.
fn objects(conn: &Connection, sql: &str) -> Result<Vec<CertificateSigningRequest>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (name, text) = row?;
        out.push(decode(&name, &text)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

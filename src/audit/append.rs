//! Appending to the chain inside the caller's transaction (so a crash cannot split a change
//! from its record), and reading the head. Used by `store::Store` and the bootstrap-token table.

use std::borrow::Cow;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{AuditRecord, Checkpoint, GENESIS, context, record_hash};

/// What a change contributes to its record; who made it (groups, request id) comes from
/// [`context::current`].
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// What happened (`create`, `approve`, …, `token-create`, `checkpoint`).
    pub kind: super::Kind,
    /// The CSR (or node, or token id) changed.
    pub name: &'a str,
    /// Who (user name).
    pub actor: &'a str,
    /// The resourceVersion of the change.
    pub resource_version: u64,
    /// Requested subject (on create).
    pub subject: Option<String>,
    /// Requested SANs (on create).
    pub sans: Option<Vec<String>>,
    /// Serial of the certificate issued.
    pub serial: Option<String>,
    /// Outcome of the change.
    pub outcome: Option<String>,
    /// A checkpoint's signed content.
    pub checkpoint: Option<Checkpoint>,
    /// The record's time when the caller fixed it (a checkpoint signs it); else now.
    pub at_unix: Option<i64>,
    /// A certificate written through `/status` (external-signing mode): its serial, hex.
    pub certificate_serial: Option<String>,
    /// That certificate's SHA-256 (hex) of the leaf DER.
    pub certificate_sha256: Option<String>,
}

impl<'a> Entry<'a> {
    /// A record of `kind` with every other field empty.
    pub fn new(kind: super::Kind) -> Entry<'a> {
        Entry {
            kind,
            name: "",
            actor: "",
            resource_version: 0,
            subject: None,
            sans: None,
            serial: None,
            outcome: None,
            checkpoint: None,
            at_unix: None,
            certificate_serial: None,
            certificate_sha256: None,
        }
    }
}

/// The added fields, kept as one JSON text in the `extra` column: borrowed from the record when
/// written ([`Added::of`]), owned when read back.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Added<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<Cow<'a, [String]>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sans: Option<Cow<'a, [String]>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Cow<'a, Checkpoint>>,
}

impl<'a> Added<'a> {
    /// The record's added fields, borrowed (no copy for writing the column).
    fn of(r: &'a AuditRecord) -> Self {
        Added {
            groups: r.groups.as_deref().map(Cow::Borrowed),
            request_id: r.request_id.as_deref().map(Cow::Borrowed),
            subject: r.subject.as_deref().map(Cow::Borrowed),
            sans: r.sans.as_deref().map(Cow::Borrowed),
            serial: r.serial.as_deref().map(Cow::Borrowed),
            outcome: r.outcome.as_deref().map(Cow::Borrowed),
            checkpoint: r.checkpoint.as_ref().map(Cow::Borrowed),
        }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The newest record's seq and hash (`None` for an empty chain).
pub fn head(conn: &Connection) -> Result<Option<(u64, String)>, rusqlite::Error> {
    // Prepared once per connection: it runs for every record.
    conn.prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| {
            Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
        })
        .optional()
}

/// The newest checkpoint: its own seq and the seq it covers.
pub fn last_checkpoint(conn: &Connection) -> Result<Option<(u64, u64)>, rusqlite::Error> {
    let row: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, extra FROM audit_events WHERE kind = 'checkpoint'
             ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map(|(seq, extra)| {
        let covered = serde_json::from_str::<Added>(&extra)
            .ok()
            .and_then(|a| a.checkpoint)
            .map_or(0, |c| c.seq);
        (u64::try_from(seq).unwrap_or(0), covered)
    }))
}

/// Appends one hash-chained record in the caller's transaction (pass the transaction: it
/// derefs to a connection) and logs its hash.
pub fn append(conn: &Connection, entry: &Entry<'_>) -> Result<AuditRecord, rusqlite::Error> {
    let rec = append_unlogged(conn, entry, None)?;
    log_appended(&rec, None);
    Ok(rec)
}

/// Appends the records of one change's steps in order (e.g. a create approved and issued at
/// once) and logs ONE line for them: the last record's seq and hash (the head, which covers the
/// ones before it), the first seq and every kind. `None` for no entries.
pub fn append_steps<'a>(
    conn: &Connection,
    entries: impl IntoIterator<Item = Entry<'a>>,
) -> Result<Option<AuditRecord>, rusqlite::Error> {
    let mut first = None;
    let mut kinds = String::new();
    let mut last: Option<AuditRecord> = None;
    for entry in entries {
        // The head after the previous step is known: no query for it.
        let prev = last.as_ref().map(|r| (r.seq, r.hash.clone()));
        let rec = append_unlogged(conn, &entry, prev)?;
        first.get_or_insert((rec.seq, rec.actor.clone()));
        if !kinds.is_empty() {
            kinds.push(',');
        }
        kinds.push_str(rec.kind.as_str());
        last = Some(rec);
    }
    if let (Some(rec), Some((seq, actor))) = (&last, first) {
        log_appended(rec, Some((seq, &actor, &kinds)));
    }
    Ok(last)
}

/// The system-log line of an append (the outside copy of the head); `steps`: the first seq,
/// its actor (who asked) and the kinds when one line stands for several records.
fn log_appended(rec: &AuditRecord, steps: Option<(u64, &str, &str)>) {
    match steps {
        Some((first_seq, actor, kinds)) if first_seq != rec.seq => {
            tracing::info!(target: "kubesigner::audit", seq = rec.seq, first_seq, kinds,
                csr = %rec.csr_name, actor,
                request_id = rec.request_id.as_deref(), head = %rec.hash, "audit");
        }
        _ => {
            tracing::info!(target: "kubesigner::audit", seq = rec.seq, kind = %rec.kind,
                csr = %rec.csr_name, actor = %rec.actor,
                request_id = rec.request_id.as_deref(), head = %rec.hash, "audit");
        }
    }
}

/// Writes one hash-chained record after the head: `prev` when the caller just wrote it (in
/// this transaction), else read.
fn append_unlogged(
    conn: &Connection,
    entry: &Entry<'_>,
    prev: Option<(u64, String)>,
) -> Result<AuditRecord, rusqlite::Error> {
    let (last_seq, prev_hash) = match prev {
        Some(p) => p,
        None => head(conn)?.unwrap_or((0, GENESIS.to_owned())),
    };
    let ctx = context::current();
    let mut rec = AuditRecord::new(
        last_seq.saturating_add(1),
        entry.at_unix.unwrap_or_else(crate::clock::unix_now),
        entry.kind,
        entry.name,
        entry.actor,
    );
    rec.resource_version = entry.resource_version;
    rec.prev_hash = prev_hash;
    if let Some(ctx) = ctx {
        rec.request_id = Some(ctx.request_id);
        if ctx.user == entry.actor {
            rec.groups = Some(ctx.groups);
        }
    }
    rec.subject.clone_from(&entry.subject);
    rec.sans.clone_from(&entry.sans);
    rec.serial.clone_from(&entry.serial);
    rec.outcome.clone_from(&entry.outcome);
    rec.checkpoint.clone_from(&entry.checkpoint);
    rec.certificate_serial.clone_from(&entry.certificate_serial);
    rec.certificate_sha256.clone_from(&entry.certificate_sha256);
    rec.hash = record_hash(&rec);
    let extra = if rec.has_added_fields() {
        serde_json::to_string(&Added::of(&rec)).unwrap_or_default()
    } else {
        String::new()
    };
    conn.prepare_cached(
        "INSERT INTO audit_events (seq, at_unix, kind, csr_name, actor, resource_version,
                                   prev_hash, hash, extra, certificate_serial, certificate_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        to_i64(rec.seq),
        rec.at_unix,
        rec.kind,
        rec.csr_name,
        rec.actor,
        to_i64(rec.resource_version),
        rec.prev_hash,
        rec.hash,
        extra,
        rec.certificate_serial,
        rec.certificate_sha256
    ])?;
    Ok(rec)
}

/// The serial (lower-case hex) of the first certificate in a PEM chain, for the record of an
/// issued certificate.
pub fn serial_of(pem_chain: &[u8]) -> Option<String> {
    use der::Decode;
    use rustls_pki_types::pem::PemObject;
    let first = rustls_pki_types::CertificateDer::pem_slice_iter(pem_chain)
        .next()?
        .ok()?;
    let cert = x509_cert::Certificate::from_der(first.as_ref()).ok()?;
    Some(hex::encode(
        cert.tbs_certificate().serial_number().as_bytes(),
    ))
}

/// Every record, oldest first (`kubesigner audit export`).
pub fn all(conn: &Connection) -> Result<Vec<AuditRecord>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT seq, at_unix, kind, csr_name, actor, resource_version, prev_hash, hash, extra,
                certificate_serial, certificate_sha256
         FROM audit_events ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        let mut rec = AuditRecord::new(
            u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            r.get(1)?,
            r.get(2)?,
            &r.get::<_, String>(3)?,
            &r.get::<_, String>(4)?,
        );
        rec.resource_version = u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0);
        rec.prev_hash = r.get(6)?;
        rec.hash = r.get(7)?;
        rec.certificate_serial = r.get(9)?;
        rec.certificate_sha256 = r.get(10)?;
        let extra: String = r.get(8)?;
        if !extra.is_empty() {
            // An unreadable column leaves the fields empty: the hash then shows the damage.
            let a: Added = serde_json::from_str(&extra).unwrap_or_default();
            rec.groups = a.groups.map(Cow::into_owned);
            rec.request_id = a.request_id.map(Cow::into_owned);
            rec.subject = a.subject.map(Cow::into_owned);
            rec.sans = a.sans.map(Cow::into_owned);
            rec.serial = a.serial.map(Cow::into_owned);
            rec.outcome = a.outcome.map(Cow::into_owned);
            rec.checkpoint = a.checkpoint.map(Cow::into_owned);
        }
        Ok(rec)
    })?;
    rows.collect()
}

//! The store's side of the audit chain (`crate::audit`): the hook that writes a change's record
//! in the change's transaction, and the chain reads and checkpoint appends.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rusqlite::Transaction;

use super::{AuditEvent, IssuedRecord, Kind, Store, StoreError, phase};

/// The audit hook for a change with nothing to add beyond the event.
pub(super) fn record(tx: &Transaction<'_>, event: &AuditEvent<'_>) -> Result<(), rusqlite::Error> {
    record_with(tx, event, crate::audit::Entry::new(event.kind))
}

/// The audit hook: writes one hash-chained row (`crate::audit`) in the same transaction as the
/// change, and logs its hash (the outside copy that makes truncation visible).
pub(super) fn record_with(
    tx: &Transaction<'_>,
    event: &AuditEvent<'_>,
    more: crate::audit::Entry<'_>,
) -> Result<(), rusqlite::Error> {
    crate::audit::append(tx, &entry_of(event, more)).map(|_| ())
}

/// The audit hook for one change made of several steps (a create approved and issued at
/// once): one row per step, in order, and one log line with the head after the last.
pub(super) fn record_steps<'a>(
    tx: &Transaction<'_>,
    steps: impl IntoIterator<Item = (AuditEvent<'a>, crate::audit::Entry<'a>)>,
) -> Result<(), rusqlite::Error> {
    let entries = steps.into_iter().map(|(e, more)| entry_of(&e, more));
    crate::audit::append_steps(tx, entries).map(|_| ())
}

fn entry_of<'a>(event: &AuditEvent<'a>, more: crate::audit::Entry<'a>) -> crate::audit::Entry<'a> {
    crate::audit::Entry {
        kind: event.kind,
        name: event.csr_name,
        actor: event.actor,
        resource_version: event.resource_version,
        certificate_serial: event.certificate.map(|c| c.serial_hex.to_owned()),
        certificate_sha256: event.certificate.map(|c| c.sha256_hex.to_owned()),
        ..more
    }
}

/// What the audit record of a CSR change adds: its phase afterwards (and the serial issued).
pub(super) fn outcome(
    csr: &CertificateSigningRequest,
    kind: Kind,
    issued: Option<&IssuedRecord>,
) -> crate::audit::Entry<'static> {
    crate::audit::Entry {
        outcome: Some(phase(csr).to_owned()),
        serial: issued.map(|i| i.serial_hex.clone()).or_else(|| {
            let cert = csr.status.as_ref()?.certificate.as_ref()?;
            (kind == Kind::Issue).then(|| crate::audit::serial_of(&cert.0))?
        }),
        ..crate::audit::Entry::new(kind)
    }
}

impl Store {
    /// The whole audit chain, oldest first (`kubesigner audit export`).
    pub fn audit_records(&self) -> Result<Vec<crate::audit::AuditRecord>, StoreError> {
        let st = self.lock()?;
        Ok(crate::audit::all(&st.conn)?)
    }

    /// The audit chain's newest seq and hash.
    pub fn audit_head(&self) -> Result<Option<(u64, String)>, StoreError> {
        let st = self.lock()?;
        Ok(crate::audit::head(&st.conn)?)
    }

    /// The newest checkpoint record's seq and the seq it covers.
    pub fn audit_last_checkpoint(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let st = self.lock()?;
        Ok(crate::audit::last_checkpoint(&st.conn)?)
    }

    /// Appends a record that goes with no CSR change (a checkpoint), durably.
    pub fn append_audit(
        &self,
        entry: &crate::audit::Entry<'_>,
    ) -> Result<crate::audit::AuditRecord, StoreError> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        let rec = crate::audit::append(&tx, entry)?;
        tx.commit()?;
        let seq = self.sync.committed()?;
        drop(st);
        self.sync.wait_durable(seq)?;
        Ok(rec)
    }
}

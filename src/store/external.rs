//! What `kubesigner controller` keeps locally: audit records of its own actions against a
//! remote kube-apiserver (a signature spent, a certificate written through `/status`) and the
//! node facts it needs for approval (certificates issued for a node, observed or its own).

use rusqlite::params;

use super::{AuditEvent, IssuedRecord, Store, StoreError, record};

impl Store {
    /// Appends one audit record (and, when given, the issued-certificate record for the node)
    /// in one transaction, and returns once it is durable.
    pub fn record_external(
        &self,
        event: &AuditEvent<'_>,
        issued: Option<&IssuedRecord>,
    ) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        if let Some(rec) = issued {
            insert_or_ignore(&tx, rec, event.csr_name)?;
        }
        record(&tx, event)?;
        tx.commit()?;
        let seq = self.sync.committed()?;
        drop(st);
        Ok(self.sync.wait_durable(seq)?)
    }

    /// Records a certificate seen in the cluster (another replica issued it) so the
    /// "no live certificate for this node" rule knows it. Not an audit event: not our action.
    pub fn observe_issued(&self, rec: &IssuedRecord, csr_name: &str) -> Result<(), StoreError> {
        let st = self.lock()?;
        insert_or_ignore(&st.conn, rec, csr_name)?;
        Ok(())
    }
}

fn insert_or_ignore(
    conn: &rusqlite::Connection,
    rec: &IssuedRecord,
    csr_name: &str,
) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT OR IGNORE INTO issued_certificates
            (serial, node_name, csr_name, not_after_unix, issued_unix)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rec.serial_hex,
            rec.node_name,
            csr_name,
            rec.not_after_unix,
            rec.issued_unix
        ],
    )?;
    Ok(())
}

//! Creating a CSR in one transaction, decisions included: an auto-approved CSR is stored with
//! its `Approved` condition and certificate already in its status, together with the audit
//! records of each step (created, approved, issued) and the node's issued-certificate record,
//! and is published to watchers as one ADDED event. One commit and one group sync per CSR.

use std::sync::Arc;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rusqlite::{OptionalExtension, params};

use super::{
    AuditEvent, CsrIndex, EventKind, IssuedRecord, Store, StoreError, bump_rv, created_unix, nodes,
    phase,
};
use crate::store::audit_hook::{outcome, record_with};

/// The actor of the appliance's own decisions in the audit log.
const APPLIANCE: &str = "kubesigner";

/// How a new CSR is stored.
#[derive(Debug, Clone, Copy)]
pub struct Creation<'a> {
    /// Indexed facts derived from the request.
    pub index: &'a CsrIndex,
    /// Who created it.
    pub actor: &'a str,
    /// The appliance's decisions already applied to the object, audited after "create" in
    /// this order (e.g. `["approve", "issue"]`) under the actor `kubesigner`.
    pub decided: &'a [&'a str],
    /// The issued-certificate record when the object carries a node client certificate.
    pub issued: Option<&'a IssuedRecord>,
}

/// A committed object and its JSON as stored (serialized once: the row, the watch events and
/// the create response share it).
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object, with its resourceVersion.
    pub object: Arc<CertificateSigningRequest>,
    /// `object` as JSON.
    pub json: Arc<str>,
}

impl Store {
    /// Stores a new CSR with whatever the appliance already decided about it (conditions and
    /// certificate set by the caller), in one transaction. Returns once the commit is durable.
    pub fn create_with(
        &self,
        mut csr: CertificateSigningRequest,
        how: &Creation<'_>,
    ) -> Result<Stored, StoreError> {
        let name = csr.metadata.name.clone().unwrap_or_default();
        // Parsed before the lock: the requested subject and SANs for the "create" record.
        let (subject, sans) = crate::issue::describe_request(&csr.spec.request.0).unzip();
        let mut st = self.lock()?;
        let tx = st.conn.transaction()?;
        let exists: Option<i64> = tx
            .prepare_cached("SELECT 1 FROM csrs WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::AlreadyExists { name });
        }
        let rv = bump_rv(&tx)?;
        csr.metadata.resource_version = Some(rv.to_string());
        let text = serde_json::to_string(&csr).map_err(StoreError::Encode)?;
        tx.prepare_cached(
            "INSERT INTO csrs (name, uid, resource_version, signer_name, requester, subject_cn,
                               node_name, phase, created_unix, object)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            name,
            csr.metadata.uid.as_deref().unwrap_or(""),
            i64::try_from(rv).unwrap_or(i64::MAX),
            csr.spec.signer_name,
            csr.spec.username.as_deref().unwrap_or(""),
            how.index.subject_cn,
            how.index.node_name,
            phase(&csr),
            created_unix(&csr),
            text
        ])?;
        if let Some(rec) = how.issued {
            nodes::insert_issued(&tx, rec, &name)?;
        }
        let steps = std::iter::once(("create", how.actor))
            .chain(how.decided.iter().map(|k| (*k, APPLIANCE)));
        let mut requested = Some((subject, sans));
        for (kind, actor) in steps {
            let event = AuditEvent {
                kind,
                csr_name: &name,
                actor,
                resource_version: rv,
                certificate: None,
            };
            let mut entry = outcome(&csr, kind, how.issued.filter(|_| kind == "issue"));
            entry.outcome = Some(step_outcome(kind, how.decided.is_empty(), &csr).to_owned());
            if let Some((subject, sans)) = requested.take() {
                entry.subject = subject;
                entry.sans = sans;
            }
            record_with(&tx, &event, entry)?;
        }
        tx.commit()?;
        let cn = how.index.subject_cn.clone();
        self.publish_durable(st, EventKind::Added, rv, csr, text, cn)
    }
}

/// The phase a step of a one-transaction create left the CSR in: "create" alone leaves it as
/// stored, "create" followed by decisions leaves it pending, each decision its own phase.
fn step_outcome(kind: &str, alone: bool, csr: &CertificateSigningRequest) -> &'static str {
    match kind {
        "create" if !alone => "pending",
        "approve" => "approved",
        "deny" => "denied",
        "fail" => "failed",
        "issue" => "issued",
        _ => phase(csr),
    }
}

//! Creating a CSR in one transaction, decisions included: an auto-approved CSR is stored with
//! its `Approved` condition and certificate already in its status, together with the audit
//! records of each step (created, approved, issued) and the node's issued-certificate record,
//! and is published to watchers as one ADDED event. The CSR writer ([`super::batch`]) puts the
//! creates that arrive together into one commit and one sync.

use std::sync::Arc;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rusqlite::{OptionalExtension, Transaction, params};

use super::batch::PendingCreate;
use super::first_address::FirstAddress;
use super::{
    AuditEvent, CsrIndex, IssuedRecord, Store, StoreError, bump_rv, created_unix, nodes, phase,
};
use crate::audit::Kind;
use crate::store::audit_hook::{outcome, record_steps};

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
    pub decided: &'a [Kind],
    /// The issued-certificate record when the object carries a node client certificate.
    pub issued: Option<&'a IssuedRecord>,
    /// The requested subject and SANs for the "create" audit record, from the one parse of
    /// the request (the store never parses `spec.request`).
    pub requested: Option<&'a (String, Vec<String>)>,
    /// The node's first bootstrap address (trust on first use), for an approved CSR only.
    pub first_address: Option<&'a FirstAddress>,
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

/// A new CSR on its way to the writer: the object and an owned copy of its [`Creation`].
#[derive(Debug)]
pub(super) struct NewCsr {
    pub(super) csr: CertificateSigningRequest,
    index: CsrIndex,
    actor: String,
    decided: Vec<Kind>,
    issued: Option<IssuedRecord>,
    /// The requested subject and SANs for the "create" audit record, parsed by the caller
    /// (not on the writer's thread).
    requested: Option<(String, Vec<String>)>,
    first_address: Option<FirstAddress>,
}

/// A CSR row written in the current transaction, not yet published.
#[derive(Debug)]
pub(super) struct Inserted {
    pub(super) resource_version: u64,
    pub(super) csr: CertificateSigningRequest,
    pub(super) json: String,
    pub(super) subject_cn: Option<String>,
}

impl Store {
    /// Stores a new CSR with whatever the appliance already decided about it (conditions and
    /// certificate set by the caller), in one transaction. Returns once the commit is durable.
    /// Blocks: for a non-async thread ([`Store::create_queued`] is the async form).
    pub fn create_with(
        &self,
        csr: CertificateSigningRequest,
        how: &Creation<'_>,
    ) -> Result<Stored, StoreError> {
        self.create_queued(csr, how)?.wait()
    }

    /// Queues a new CSR for the CSR writer ([`super::batch`]), which commits the creates that
    /// arrive together in one transaction and one sync; each still gets its own
    /// resourceVersion, audit records and ADDED event, and a create that fails (e.g. the name
    /// exists) fails alone. The answer comes once the commit is durable.
    pub fn create_queued(
        &self,
        csr: CertificateSigningRequest,
        how: &Creation<'_>,
    ) -> Result<PendingCreate, StoreError> {
        self.writer.submit(NewCsr {
            csr,
            index: how.index.clone(),
            actor: how.actor.to_owned(),
            decided: how.decided.to_vec(),
            issued: how.issued.cloned(),
            requested: how.requested.cloned(),
            first_address: how.first_address.cloned(),
        })
    }
}

/// Inserts one new CSR in `tx`: the row with its resourceVersion, the node's issued-certificate
/// record and the audit records of each step (created, then each decision, in that order).
/// `AlreadyExists` leaves `tx` untouched.
pub(super) fn insert_new(tx: &Transaction<'_>, new: &NewCsr) -> Result<Inserted, StoreError> {
    let NewCsr {
        csr,
        index,
        actor,
        decided,
        issued,
        requested,
        first_address,
    } = new;
    // Borrowed, so that a failed batch can retry it; the one copy is the stored object.
    let mut csr = csr.clone();
    let name = csr.metadata.name.clone().unwrap_or_default();
    let exists: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM csrs WHERE name = ?1")?
        .query_row(params![name], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(StoreError::AlreadyExists { name });
    }
    let rv = bump_rv(tx)?;
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
        index.subject_cn,
        index.node_name,
        phase(&csr),
        created_unix(&csr),
        text
    ])?;
    // Before the certificate record: the address is kept only while the node is unknown.
    if let Some(first) = first_address {
        super::first_address::record_in(tx, first, rv)?;
    }
    if let Some(rec) = &issued {
        nodes::insert_issued(tx, rec, &name)?;
    }
    let steps = std::iter::once((Kind::Create, actor.as_str()))
        .chain(decided.iter().map(|k| (*k, APPLIANCE)));
    // Only the "create" record carries them.
    let mut requested = requested.clone();
    let records = steps.map(|(kind, actor)| {
        let event = AuditEvent {
            kind,
            csr_name: &name,
            actor,
            resource_version: rv,
            certificate: None,
        };
        let mut entry = outcome(&csr, kind, issued.as_ref().filter(|_| kind == Kind::Issue));
        entry.outcome = Some(step_outcome(kind, decided.is_empty(), &csr).to_owned());
        if let Some((subject, sans)) = requested.take() {
            entry.subject = Some(subject);
            entry.sans = Some(sans);
        }
        (event, entry)
    });
    record_steps(tx, records)?;
    Ok(Inserted {
        resource_version: rv,
        csr,
        json: text,
        subject_cn: index.subject_cn.clone(),
    })
}

/// The phase a step of a one-transaction create left the CSR in: "create" alone leaves it as
/// stored, "create" followed by decisions leaves it pending, each decision its own phase.
fn step_outcome(kind: Kind, alone: bool, csr: &CertificateSigningRequest) -> &'static str {
    match kind {
        Kind::Create if !alone => "pending",
        Kind::Approve => "approved",
        Kind::Deny => "denied",
        Kind::Fail => "failed",
        Kind::Issue => "issued",
        _ => phase(csr),
    }
}

//! Audit records for the CA-key signatures made outside a CSR's life: the appliance's own
//! serving certificate (at every start and renewal), the dev admin certificate, the CA's
//! self-signature. Node certificates are recorded as `issue` records with the change that
//! stores them. Together with the signer's counter (`kubesigner_ca_signatures_total`) they
//! make "no signature escapes the audit" checkable: the counter of a `serve` process equals
//! the signature records it appended.

use std::path::Path;

use der::Decode;

use super::{AuditRecord, Entry, Kind};
use crate::store::{Store, StoreError};

/// Why a signature could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum SignatureAuditError {
    /// The certificate does not parse (it was just built here: a bug).
    #[error("cannot read the signed certificate: {0}")]
    Certificate(String),
    /// The store refused the record.
    #[error("cannot record the signature: {0}")]
    Store(#[from] StoreError),
}

/// The record for one signed certificate (DER): its subject, serial and purpose (`kind`).
pub fn entry<'a>(
    kind: Kind,
    actor: &'a str,
    name: &'a str,
    der: &[u8],
) -> Result<Entry<'a>, SignatureAuditError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| SignatureAuditError::Certificate(e.to_string()))?;
    let tbs = cert.tbs_certificate();
    Ok(Entry {
        name,
        actor,
        subject: Some(crate::issue::rfc4514::rfc4514(tbs.subject())),
        serial: Some(hex::encode(tbs.serial_number().as_bytes())),
        outcome: Some("signed".to_owned()),
        ..Entry::new(kind)
    })
}

/// Appends the record for `der` to `store`'s chain, durably.
pub fn record(
    store: &Store,
    kind: Kind,
    actor: &str,
    name: &str,
    der: &[u8],
) -> Result<AuditRecord, SignatureAuditError> {
    Ok(store.append_audit(&entry(kind, actor, name, der)?)?)
}

/// [`record`] for the first certificate of `pem`, in the store of `data_dir` (local commands).
pub fn record_pem(
    data_dir: &Path,
    kind: Kind,
    name: &str,
    pem: &str,
) -> Result<AuditRecord, SignatureAuditError> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| SignatureAuditError::Certificate("no certificate".to_owned()))?
        .map_err(|e| SignatureAuditError::Certificate(e.to_string()))?;
    let store = Store::open(data_dir)?;
    record(&store, kind, "kubesigner-cli", name, der.as_ref())
}

//! External-signing mode (`[server] external_signing`): the appliance stores and
//! serves CSRs as kube-apiserver does, and a controller writes `status.certificate` through
//! `/status`. These are the apiserver's rules for that write (reference §1.4): the certificate is
//! PEM `CERTIFICATE` blocks only, set once and never changed or cleared; and, stricter than
//! upstream (reference §7), only on an Approved CSR that is neither Denied nor Failed.

use aws_lc_rs::digest;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Api;
use crate::api::csr::UpdatePath;
use crate::api::csr::rules;
use crate::api::error::{ApiError, invalid};
use crate::api::hooks::Caller;

/// Largest `status.certificate` accepted: a leaf and a few intermediates are < 16 KiB; 256 KiB
/// bounds parsing far above any real chain (the request body limit still applies).
pub const MAX_CERTIFICATE_BYTES: usize = 256 * 1024;
const FIELD: &str = "status.certificate";

/// What the audit record says about a written certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenCert {
    /// The leaf's serial number, hex (lower case, as DER content bytes).
    pub serial_hex: String,
    /// SHA-256 (hex) of the leaf certificate's DER (its fingerprint).
    pub sha256_hex: String,
}

fn certificate(csr: &CertificateSigningRequest) -> Option<&ByteString> {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .filter(|c| !c.0.is_empty())
}

/// Checks a certificate value as kube-apiserver's validation does (PEM, `CERTIFICATE` blocks
/// only, each an X.509 certificate; nothing else in the value) and returns the leaf's facts.
pub fn parse_certificate(name: &str, pem: &[u8]) -> Result<WrittenCert, ApiError> {
    let bad = |m: &str| invalid(name, "FieldValueInvalid", FIELD, m);
    if pem.len() > MAX_CERTIFICATE_BYTES {
        return Err(bad("the certificate chain is too large"));
    }
    let chain = x509_cert::Certificate::load_pem_chain(pem)
        .map_err(|_| bad("must contain only PEM-encoded CERTIFICATE blocks"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| bad("must contain at least one certificate"))?;
    let der = der::Encode::to_der(leaf).map_err(|_| bad("the certificate does not encode"))?;
    Ok(WrittenCert {
        serial_hex: hex::encode(leaf.tbs_certificate().serial_number().as_bytes()),
        sha256_hex: hex::encode(digest::digest(&digest::SHA256, &der)),
    })
}

/// The certificate a `/status` write would set: `Some` when the body carries one and the
/// stored object has none (the write needs `sign` on the signer, and is audited).
pub fn new_certificate<'a>(
    stored: &CertificateSigningRequest,
    body: &'a CertificateSigningRequest,
) -> Option<&'a ByteString> {
    certificate(body).filter(|_| certificate(stored).is_none())
}

/// PUT/PATCH `/status` in external-signing mode: conditions as [`rules::apply_status`]; the
/// certificate may be set once, on an Approved CSR that is not Denied or Failed, and never
/// changed or cleared. Returns the new certificate's facts when this write set it.
pub fn apply_status(
    stored: &mut CertificateSigningRequest,
    body: &CertificateSigningRequest,
    now: &Time,
) -> Result<Option<WrittenCert>, ApiError> {
    let name = stored.metadata.name.clone().unwrap_or_default();
    let old = certificate(stored).cloned();
    let new = certificate(body).cloned();
    if old.is_some() && old != new {
        return Err(invalid(
            &name,
            "FieldValueForbidden",
            FIELD,
            "updates may not modify existing certificate content",
        ));
    }
    // The condition rules, with the certificate held equal so they do not refuse it.
    let mut same = body.clone();
    same.status.get_or_insert_with(Default::default).certificate = old.clone();
    rules::apply_status(stored, &same, now)?;
    let Some(new) = new.filter(|_| old.is_none()) else {
        return Ok(None);
    };
    use crate::conditions::{ConditionType, has_condition};
    if !has_condition(stored, ConditionType::Approved)
        || has_condition(stored, ConditionType::Denied)
        || has_condition(stored, ConditionType::Failed)
    {
        return Err(invalid(
            &name,
            "FieldValueForbidden",
            FIELD,
            "a certificate may be set only on an Approved CSR that is not Denied or Failed",
        ));
    }
    let facts = parse_certificate(&name, &new.0)?;
    stored
        .status
        .get_or_insert_with(Default::default)
        .certificate = Some(new);
    Ok(Some(facts))
}

/// [`apply_status`] inside the update's transaction, when the audit record was named before it
/// (`expected`: a certificate is set by this write). A certificate another writer set in
/// between makes the write a 409 Conflict, never a second record.
pub fn apply_status_once(
    stored: &mut CertificateSigningRequest,
    body: &CertificateSigningRequest,
    now: &Time,
    expected: bool,
) -> Result<(), ApiError> {
    let name = stored.metadata.name.clone().unwrap_or_default();
    let set = apply_status(stored, body, now)?;
    if set.is_some() == expected {
        Ok(())
    } else {
        Err(ApiError::Conflict { name })
    }
}

impl Api {
    /// kube-apiserver's CSR admission on `/approval` (`approve` on the signer) and on `/status`
    /// writes that set a certificate in external-signing mode (`sign` on the signer); the
    /// signer name is the stored object's. Refusals are 403 `Status`es, logged.
    pub(in crate::api) fn admit_update(
        &self,
        caller: &Caller,
        path: UpdatePath,
        stored: &CertificateSigningRequest,
        body: &CertificateSigningRequest,
    ) -> Result<(), ApiError> {
        let verb = match path {
            UpdatePath::Approval => "approve",
            UpdatePath::Status
                if self.inner.external && new_certificate(stored, body).is_some() =>
            {
                "sign"
            }
            _ => return Ok(()),
        };
        let signer = &stored.spec.signer_name;
        crate::authz::may_use_signer(caller, verb, signer, &self.inner.authz).map_err(|f| {
            tracing::info!(user = %caller.user, verb, signer = %signer, "csr admission refused");
            ApiError::Forbidden { message: f.message }
        })
    }

    /// The certificate a `/status` write sets in external-signing mode, checked (form) before
    /// the transaction so its audit record can name it.
    pub(in crate::api) fn certificate_to_write(
        &self,
        path: UpdatePath,
        name: &str,
        stored: &CertificateSigningRequest,
        body: &CertificateSigningRequest,
    ) -> Result<Option<WrittenCert>, ApiError> {
        if path != UpdatePath::Status || !self.inner.external {
            return Ok(None);
        }
        new_certificate(stored, body)
            .map(|c| parse_certificate(name, &c.0))
            .transpose()
    }
}

#[cfg(test)]
mod tests;

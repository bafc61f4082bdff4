//! The CSR conditions both modes read and write (reference §1.3): one place for the rule
//! "approved, not denied, not failed, no certificate yet" and for the conditions the appliance
//! adds.

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// `Approved`.
pub const APPROVED: &str = "Approved";
/// `Denied`.
pub const DENIED: &str = "Denied";
/// `Failed`.
pub const FAILED: &str = "Failed";
/// Reason of the `Failed` condition for a signer-rule violation (upstream's).
pub const SIGNER_VALIDATION_FAILURE: &str = "SignerValidationFailure";

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

/// Whether the CSR has a condition of this type.
pub fn has_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    conditions(csr).iter().any(|c| c.type_ == type_)
}

/// Whether `status.certificate` is set (and not empty).
pub fn has_certificate(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// Approved, not Denied, not Failed, no certificate yet: the signer's work.
pub fn needs_signing(csr: &CertificateSigningRequest) -> bool {
    has_condition(csr, APPROVED)
        && !has_condition(csr, DENIED)
        && !has_condition(csr, FAILED)
        && !has_certificate(csr)
}

/// A new condition written by the appliance.
pub fn condition(
    type_: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition {
        type_: type_.to_owned(),
        status: "True".to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// Adds an appliance condition unless one of its type already exists.
pub fn add_condition(csr: &mut CertificateSigningRequest, c: CertificateSigningRequestCondition) {
    let status = csr.status.get_or_insert_with(Default::default);
    let list = status.conditions.get_or_insert_with(Vec::new);
    if !list.iter().any(|o| o.type_ == c.type_) {
        list.push(c);
    }
}

//! The `Failed` condition for CSRs whose signer name this appliance does not sign for.
//!
//! Upstream silently ignores unknown signer names: the CSR stays Pending until the GC deletes it
//! 24 h later, and the requester waits in vain (a known complaint). Here such a CSR gets a
//! terminal `Failed` condition at once; kubelets and client-go treat `Failed` as terminal
//! (reference §4.3), so the requester learns the reason immediately.
//!
//! Reason: [`REASON`] = `UnknownSigner`, not `SignerValidationFailure`. The latter is what a
//! signer writes when a request it *does* handle breaks that signer's rules (design.md uses it
//! that way); an operator or alert keyed on it would be misled. `UnknownSigner` says what is
//! wrong (the name, not the request) in the CamelCase form Kubernetes reasons use. Clients do not
//! branch on the reason, only on the `Failed` type, so nothing depends on the upstream string.
//!
//! # How the API calls it
//! **Standalone `serve` mode only.** On create, after the generic validation (reference §1.3:
//! the signer name is well formed and not `kubernetes.io/legacy-unknown`) and after
//! `PrepareForCreate` cleared the status: if the signer name is not one the appliance has a
//! profile for (the kubelet names, plus configured ones), call
//! [`mark_unknown_signer`]`(&mut csr, Timestamp::now())`, store the CSR (201 Created) and do not
//! run the approver or signer on it. The watch then shows `Failed`.
//! **Never in `controller` mode**: behind a real kube-apiserver other signers may own the name.

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::conditions::ConditionType;
use crate::issue::names::MAX_SIGNER_NAME_LEN;

/// The condition reason for an unknown signer name.
pub const REASON: &str = "UnknownSigner";

/// `this appliance does not sign for signer name "X"` (X quoted and escaped, cut to
/// [`MAX_SIGNER_NAME_LEN`], the validation limit on signer names: longer, invalid, names are cut).
pub fn unknown_signer_message(signer_name: &str) -> String {
    let mut end = signer_name.len().min(MAX_SIGNER_NAME_LEN);
    while !signer_name.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let shown = signer_name.get(..end).unwrap_or("");
    format!("this appliance does not sign for signer name {shown:?}")
}

/// The `Failed` condition for `signer_name`, stamped `now`.
pub fn unknown_signer_condition(
    signer_name: &str,
    now: Timestamp,
) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition {
        type_: ConditionType::Failed.as_str().to_owned(),
        status: "True".to_owned(),
        reason: Some(REASON.to_owned()),
        message: Some(unknown_signer_message(signer_name)),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Whether [`mark_unknown_signer`] changed the CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// The `Failed` condition was appended.
    Added,
    /// The CSR already had a `Failed` condition; nothing changed (conditions are unique by type).
    AlreadyFailed,
}

/// Appends the unknown-signer `Failed` condition to `csr` (named by its own `spec.signerName`)
/// unless it already has a `Failed` condition.
pub fn mark_unknown_signer(csr: &mut CertificateSigningRequest, now: Timestamp) -> Marked {
    let condition = unknown_signer_condition(&csr.spec.signer_name, now);
    let status = csr.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if conditions.iter().any(|c| ConditionType::Failed.is(c)) {
        return Marked::AlreadyFailed;
    }
    conditions.push(condition);
    Marked::Added
}

#[cfg(test)]
mod tests;

//! The CSR conditions both modes read and write (reference §1.3): one place for the rule
//! "approved, not denied, not failed, no certificate yet" and for the conditions the appliance
//! adds.

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::fmt;
use std::str::FromStr;

/// The condition types with a meaning to the API (reference §1.3). Other types are legal on the
/// wire and are kept as the strings they arrived as: [`ConditionType::of`] gives `None` for them.
/// Conditions stay `k8s_openapi` objects (their `type` a string on every wire and in the store);
/// this enum is how the code asks about them, and [`ConditionType::as_str`] / [`FromStr`] are the
/// one conversion to and from that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ConditionType {
    /// `Approved`: written through `/approval`.
    Approved,
    /// `Denied`: written through `/approval`.
    Denied,
    /// `Failed`: written through `/status`.
    Failed,
}

impl ConditionType {
    /// Every type, in the order Kubernetes lists them.
    pub const ALL: [Self; 3] = [Self::Approved, Self::Denied, Self::Failed];

    /// The Kubernetes string (`"Approved"`, `"Denied"`, `"Failed"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "Approved",
            Self::Denied => "Denied",
            Self::Failed => "Failed",
        }
    }

    /// The type of `c`; `None` for a type the API gives no meaning (kept as written).
    pub fn of(c: &CertificateSigningRequestCondition) -> Option<Self> {
        c.type_.parse().ok()
    }

    /// Whether `c` is of this type.
    pub fn is(self, c: &CertificateSigningRequestCondition) -> bool {
        c.type_ == self.as_str()
    }

    /// Approved and Denied: the decision, set through `/approval` only.
    pub const fn is_approval(self) -> bool {
        matches!(self, Self::Approved | Self::Denied)
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition type other than Approved, Denied, Failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition type {0:?} has no meaning to the API")]
pub struct UnknownConditionType(pub String);

impl FromStr for ConditionType {
    type Err = UnknownConditionType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownConditionType(s.to_owned()))
    }
}

/// Reason of the `Failed` condition for a signer-rule violation (upstream's).
pub const SIGNER_VALIDATION_FAILURE: &str = "SignerValidationFailure";

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

/// The CSR's condition of this type, if any.
pub fn find_condition(
    csr: &CertificateSigningRequest,
    type_: ConditionType,
) -> Option<&CertificateSigningRequestCondition> {
    conditions(csr).iter().find(|c| type_.is(c))
}

/// Whether the CSR has a condition of this type.
pub fn has_condition(csr: &CertificateSigningRequest, type_: ConditionType) -> bool {
    find_condition(csr, type_).is_some()
}

/// Whether the CSR has Approved, Denied or Failed (the appliance adds none of them then, except
/// Failed after Approved).
pub fn is_decided(csr: &CertificateSigningRequest) -> bool {
    ConditionType::ALL
        .into_iter()
        .any(|t| has_condition(csr, t))
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
    has_condition(csr, ConditionType::Approved)
        && !has_condition(csr, ConditionType::Denied)
        && !has_condition(csr, ConditionType::Failed)
        && !has_certificate(csr)
}

/// A new condition written by the appliance.
pub fn condition(
    type_: ConditionType,
    reason: &str,
    message: &str,
    now: &Time,
) -> CertificateSigningRequestCondition {
    CertificateSigningRequestCondition {
        type_: type_.as_str().to_owned(),
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

#[cfg(test)]
mod tests;

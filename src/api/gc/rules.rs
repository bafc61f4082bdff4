//! CSR garbage collection: the decision whether one CSR object may be deleted now.
//!
//! Rules (reference §1.5, upstream `pkg/controller/certificates/cleaner/cleaner.go`), checked
//! in upstream's order, the first that matches wins:
//! 1. approved **and issued**, [`GcConfig::approved_age`] (1 h) after Approved's `lastUpdateTime`;
//! 2. denied, [`GcConfig::denied_age`] (1 h) after Denied's `lastUpdateTime`;
//! 3. failed, [`GcConfig::failed_age`] (1 h) after Failed's `lastUpdateTime`;
//! 4. pending, [`GcConfig::pending_age`] (24 h) after `creationTimestamp`;
//! 5. issued, once the leaf certificate's NotAfter has passed.
//!
//! Stricter than upstream, on purpose:
//! - An Approved CSR without a certificate is **never** collected (unless it is also Denied or
//!   Failed), however old: an HSM outage must not lose an approved request. (Upstream never
//!   collects it either, but only by accident of its "pending = no conditions" rule.) The signer
//!   therefore must not write `Failed` for transient HSM errors.
//! - "Pending" means no Approved, Denied or Failed condition (upstream: no condition at all), so
//!   a CSR carrying only some other condition type does not live forever.
//! - A condition without `lastUpdateTime` ages from `lastTransitionTime`, else from
//!   `creationTimestamp` (upstream never collects it). A CSR with no usable time at all is kept.
//!
//! # How the API calls it
//! A GC task runs every [`GcConfig::interval`]; for each stored CSR it calls
//! [`collect`]`(&csr, Timestamp::now(), &config.gc)` and, on `Some(reason)`, deletes the CSR
//! through the store (emitting a watch `DELETED` event) and writes an audit record naming the
//! CSR, its uid and `reason.as_str()`. The per-node record of issued certificates (serial,
//! NotAfter) is not touched: it outlives the CSR object. Nothing runs when `enabled = false`.

use std::time::Duration;

use crate::conditions::ConditionType;
use der::DecodePem;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::config::GcConfig;

/// Why a CSR is collected (for the audit record and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcReason {
    /// Approved and issued, older than `approved_age` since approval.
    Issued,
    /// Denied, older than `denied_age`.
    Denied,
    /// Failed, older than `failed_age`.
    Failed,
    /// Pending, older than `pending_age` since creation.
    Pending,
    /// Issued, and the leaf certificate has expired.
    CertificateExpired,
}

impl GcReason {
    /// A stable name for audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            GcReason::Issued => "issued-past-deadline",
            GcReason::Denied => "denied-past-deadline",
            GcReason::Failed => "failed-past-deadline",
            GcReason::Pending => "pending-past-deadline",
            GcReason::CertificateExpired => "certificate-expired",
        }
    }
}

/// Decides whether `csr` may be deleted at `now`. Pure: no I/O, no clock.
pub fn collect(
    csr: &CertificateSigningRequest,
    now: Timestamp,
    cfg: &GcConfig,
) -> Option<GcReason> {
    let view = CsrView::of(csr);
    let older = |cond: Option<Option<&Time>>, age: Duration| {
        cond.and_then(|t| t.or(view.created))
            .is_some_and(|t| older_than(t, now, age))
    };
    if view.leaf.is_some() && older(view.approved, cfg.approved_age) {
        return Some(GcReason::Issued);
    }
    if older(view.denied, cfg.denied_age) {
        return Some(GcReason::Denied);
    }
    if older(view.failed, cfg.failed_age) {
        return Some(GcReason::Failed);
    }
    let pending = view.approved.is_none() && view.denied.is_none() && view.failed.is_none();
    if pending
        && view
            .created
            .is_some_and(|t| older_than(t, now, cfg.pending_age))
    {
        return Some(GcReason::Pending);
    }
    if view.approved.is_some()
        && view
            .leaf
            .and_then(leaf_not_after)
            .is_some_and(|na| now > na)
    {
        return Some(GcReason::CertificateExpired);
    }
    None
}

/// The parts of a CSR the rules read. `Some(None)` = condition present without a usable time.
struct CsrView<'a> {
    created: Option<&'a Time>,
    approved: Option<Option<&'a Time>>,
    denied: Option<Option<&'a Time>>,
    failed: Option<Option<&'a Time>>,
    leaf: Option<&'a [u8]>,
}

impl<'a> CsrView<'a> {
    fn of(csr: &'a CertificateSigningRequest) -> Self {
        let status = csr.status.as_ref();
        let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
        let find = |ty: ConditionType| {
            conditions
                .iter()
                .find(|c| ty.is(c) && c.status == "True")
                .map(|c| {
                    c.last_update_time
                        .as_ref()
                        .or(c.last_transition_time.as_ref())
                })
        };
        CsrView {
            created: csr.metadata.creation_timestamp.as_ref(),
            approved: find(ConditionType::Approved),
            denied: find(ConditionType::Denied),
            failed: find(ConditionType::Failed),
            leaf: status
                .and_then(|s| s.certificate.as_ref())
                .map(|c| c.0.as_slice())
                .filter(|c| !c.is_empty()),
        }
    }
}

/// `now - t > age`, saturating (an age too large for the clock never elapses).
fn older_than(t: &Time, now: Timestamp, age: Duration) -> bool {
    let age = SignedDuration::try_from(age).unwrap_or(SignedDuration::MAX);
    now.duration_since(t.0) > age
}

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// NotAfter of the first PEM certificate in `status.certificate`; `None` if it does not parse
/// (then only the age rules apply, as upstream).
fn leaf_not_after(pem: &[u8]) -> Option<Timestamp> {
    let start = find(pem, BEGIN)?;
    let rest = pem.get(start..)?;
    let end = find(rest, END)?.checked_add(END.len())?;
    let cert = x509_cert::Certificate::from_pem(rest.get(..end)?).ok()?;
    let secs = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
        .as_secs();
    Timestamp::from_second(i64::try_from(secs).ok()?).ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;

//! [`Issuance`] over the real core: `issue::validate` + `issue::admit` on create, the approval
//! rules, and `issue::Issuer::issue` (one token signature) for approved CSRs.
//!
//! Approval is `policy::Approver`'s: the engine gathers the node facts from the store and the
//! caller, and maps the policy's decision to the conditions the API writes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use globset::{Glob, GlobSet, GlobSetBuilder};

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::error::Cause;
use super::hooks::{Caller, Decision, Inspection, Issuance, Issued, Outcome, SignFailure};
use crate::authn::AuthMethod;
use crate::config::IssuanceConfig;
use crate::issue::{CsrRejection, Issuer, Requester, SignerName, SubjectIdentity, ValidatedCsr};
use crate::policy::{self, Approver, NodeFacts};
use crate::store::{IssuedRecord, NodeState};

/// Condition reason for an automatic approval (upstream's).
pub const AUTO_APPROVED: &str = policy::AUTO_APPROVED;

/// Readiness of the signer (the token signer's `ready()`).
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// Validation, approval and signing with the appliance's CA.
pub struct Engine {
    issuer: Issuer,
    cfg: IssuanceConfig,
    admin_groups: Vec<String>,
    /// Replaced whole when the node inventory file changes ([`Engine::replace_approver`]).
    approver: std::sync::RwLock<Arc<Approver>>,
    ready: ReadyFn,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The policy's view of the caller.
fn requester(caller: &Caller) -> Requester {
    Requester {
        username: caller.user.clone(),
        uid: caller.uid.clone(),
        groups: caller.groups.clone(),
    }
}

/// The bootstrap token's node-name patterns, compiled; `None` when the caller did not use a
/// bound bootstrap token. Patterns are validated when the token is created; one that no longer
/// compiles is dropped, and a token left with none matches no node (as `allows_node` does).
fn token_node_patterns(caller: &Caller) -> Option<GlobSet> {
    let AuthMethod::BootstrapToken(info) = &caller.method else {
        return None;
    };
    if info.node_name_patterns.is_empty() {
        return None;
    }
    let mut b = GlobSetBuilder::new();
    for p in &info.node_name_patterns {
        match Glob::new(p) {
            Ok(g) => {
                b.add(g);
            }
            Err(e) => tracing::warn!(pattern = %p, error = %e, "bad bootstrap-token node pattern"),
        }
    }
    Some(b.build().unwrap_or_else(|_| GlobSet::empty()))
}

/// What the policy needs from the store, for the caller.
fn node_facts(caller: &Caller, node: NodeState) -> NodeFacts {
    NodeFacts {
        state: if node.disabled {
            policy::NodeState::Disabled
        } else {
            policy::NodeState::Enabled
        },
        latest_client_cert_not_after: node.latest_not_after_unix.map(from_unix),
        token_node_patterns: token_node_patterns(caller),
        first_bootstrap_address: None,
    }
}

/// `node_disabled` → `NodeDisabled`: the rule, as a condition reason (UpperCamelCase).
fn reason_of(rule: &str) -> String {
    rule.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect()
}

/// The policy's decision as conditions to write.
fn to_conditions(csr: &str, d: policy::Decision) -> Decision {
    match d {
        policy::Decision::Approve { reason, message } => Decision::Approve {
            reason: reason.to_owned(),
            message,
        },
        policy::Decision::Deny { rule, message } => Decision::Deny {
            reason: reason_of(rule),
            message,
        },
        policy::Decision::Pending { rule, why } => {
            tracing::debug!(csr, rule, %why, "csr left pending");
            Decision::Pending
        }
    }
}

impl Engine {
    /// An engine over `issuer`, with the issuance config, `[auth] admin_groups` (admission),
    /// the approval policy and the signer's readiness.
    pub fn new(
        issuer: Issuer,
        cfg: IssuanceConfig,
        admin_groups: Vec<String>,
        approver: Approver,
        ready: ReadyFn,
    ) -> Engine {
        Engine {
            issuer,
            cfg,
            admin_groups,
            approver: std::sync::RwLock::new(Arc::new(approver)),
            ready,
        }
    }

    /// Swaps in a new approval policy (a reloaded node inventory); requests already deciding
    /// finish with the old one.
    pub fn replace_approver(&self, approver: Approver) {
        let mut slot = self
            .approver
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Arc::new(approver);
    }

    fn current_approver(&self) -> Arc<Approver> {
        Arc::clone(
            &self
                .approver
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn validated(&self, csr: &CertificateSigningRequest) -> Result<ValidatedCsr, CsrRejection> {
        crate::issue::validate(&csr.spec, &self.cfg)
    }
}

impl Issuance for Engine {
    fn inspect(&self, csr: &CertificateSigningRequest) -> Inspection {
        self.inspection_of(self.validated(csr).as_ref())
    }

    fn decide(
        &self,
        csr: &CertificateSigningRequest,
        caller: &Caller,
        node: NodeState,
    ) -> Decision {
        let Ok(v) = self.validated(csr) else {
            return Decision::Pending;
        };
        self.decide_validated(&v, csr, caller, node)
    }

    fn ready(&self) -> bool {
        (self.ready)()
    }

    fn records_first_address(&self, csr: &CertificateSigningRequest, caller: &Caller) -> bool {
        self.cfg.record_first_bootstrap_address
            && self
                .current_approver()
                .is_bootstrap_requester(&requester(caller))
            && self.validated(csr).is_ok_and(|v| {
                v.signer == SignerName::KubeletClient
                    && matches!(v.identity, SubjectIdentity::Node(_))
            })
    }

    fn sign(&self, csr: &CertificateSigningRequest) -> Result<Issued, SignFailure> {
        let v = self.validated(csr).map_err(|e| SignFailure::Refused {
            message: e.to_string(),
        })?;
        self.sign_validated(&v)
    }

    fn process(
        &self,
        csr: &CertificateSigningRequest,
        caller: &Caller,
        node: NodeState,
        before_sign: &mut dyn FnMut(&Decision) -> bool,
    ) -> Outcome {
        let validated = self.validated(csr);
        let inspection = self.inspection_of(validated.as_ref());
        let (Inspection::Valid, Ok(v)) = (&inspection, validated) else {
            return Outcome {
                inspection,
                decision: None,
                signed: None,
                requested: None,
            };
        };
        let decision = self.decide_validated(&v, csr, caller, node);
        let signed = (matches!(decision, Decision::Approve { .. }) && before_sign(&decision))
            .then(|| self.sign_validated(&v));
        Outcome {
            inspection,
            decision: Some(decision),
            signed,
            requested: Some(v.csr.describe()),
        }
    }
}

impl Engine {
    fn inspection_of(&self, validated: Result<&ValidatedCsr, &CsrRejection>) -> Inspection {
        match validated {
            Ok(v) => match crate::issue::admit(v, &self.admin_groups) {
                Ok(()) => Inspection::Valid,
                Err(r) => Inspection::AdmissionDenied {
                    message: r.to_string(),
                },
            },
            Err(CsrRejection::Invalid(e)) => Inspection::Invalid(vec![Cause {
                reason: "FieldValueInvalid",
                field: e.field().to_owned(),
                message: e.to_string(),
            }]),
            Err(CsrRejection::SignerValidation(f)) => Inspection::SignerRuleViolation {
                message: f.to_string(),
            },
            Err(CsrRejection::NotOurSigner { signer_name }) => Inspection::UnknownSigner {
                message: crate::compat::signer_names::unknown_signer_message(signer_name),
            },
        }
    }

    fn decide_validated(
        &self,
        v: &ValidatedCsr,
        csr: &CertificateSigningRequest,
        caller: &Caller,
        node: NodeState,
    ) -> Decision {
        let mut facts = node_facts(caller, node);
        if self.cfg.record_first_bootstrap_address {
            facts.first_bootstrap_address = node.first_bootstrap_address;
        }
        let d = self
            .current_approver()
            .decide(v, &requester(caller), &facts, SystemTime::now());
        to_conditions(csr.metadata.name.as_deref().unwrap_or_default(), d)
    }

    fn sign_validated(&self, v: &ValidatedCsr) -> Result<Issued, SignFailure> {
        let started = std::time::Instant::now();
        let issued = self.sign_timed(v);
        crate::metrics::global()
            .issuance_seconds
            .observe(started.elapsed().as_secs_f64());
        issued
    }

    fn sign_timed(&self, v: &ValidatedCsr) -> Result<Issued, SignFailure> {
        let now = SystemTime::now();
        let cert = self.issuer.issue(v, now).map_err(|e| {
            tracing::warn!(error = %e, "issuing failed; will retry");
            SignFailure::Unavailable
        })?;
        let record = match &v.identity {
            SubjectIdentity::Node(n) if v.signer == SignerName::KubeletClient => {
                Some(IssuedRecord {
                    node_name: n.as_str().to_owned(),
                    serial_hex: cert.serial.clone(),
                    not_after_unix: unix(cert.not_after),
                    issued_unix: unix(now),
                })
            }
            _ => None,
        };
        Ok(Issued {
            pem_chain: cert.pem_chain.into_bytes(),
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_become_condition_reasons() {
        assert_eq!(reason_of("node_disabled"), "NodeDisabled");
        assert_eq!(reason_of("token_node_binding"), "TokenNodeBinding");
        assert_eq!(reason_of(""), "");
    }
}

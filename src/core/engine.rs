//! [`Core`]: validation, admission, approval and signing over one parsed request.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::IssuanceConfig;
use crate::issue::{
    CsrRejection, CsrRequest, IssueError, Issuer, SignerName, SpecFields, SubjectIdentity,
    ValidatedCsr,
};
use crate::policy::{self, Approver, NodeFacts};
use crate::store::IssuedRecord;

use super::facts::reason_of;
use super::node_locks::NodeLocks;
use super::outcome::{Decision, Inspection, Issued, Outcome, SignFailure};
use crate::clock::unix_secs;

/// Readiness of the signer (the token signer's `ready()`).
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// Validation, approval and signing with the appliance's CA: built once per process by the
/// mode's wiring, shared by every request.
pub struct Core {
    issuer: Arc<Issuer>,
    cfg: IssuanceConfig,
    admin_groups: Vec<String>,
    /// Replaced whole when the node inventory file changes ([`Core::replace_approver`]).
    approver: std::sync::RwLock<Arc<Approver>>,
    ready: ReadyFn,
    nodes: NodeLocks,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core over `issuer`, with `[issuance]`, `[auth] admin_groups` (admission), the
    /// approval policy and the signer's readiness.
    pub fn new(
        issuer: Arc<Issuer>,
        cfg: IssuanceConfig,
        admin_groups: Vec<String>,
        approver: Approver,
        ready: ReadyFn,
    ) -> Core {
        Core {
            issuer,
            cfg,
            admin_groups,
            approver: std::sync::RwLock::new(Arc::new(approver)),
            ready,
            nodes: NodeLocks::default(),
        }
    }

    /// `[issuance]`.
    pub fn config(&self) -> &IssuanceConfig {
        &self.cfg
    }

    /// The issuer (CA bundles, signing).
    pub fn issuer(&self) -> &Arc<Issuer> {
        &self.issuer
    }

    /// The per-node locks ([`NodeLocks`]).
    pub fn nodes(&self) -> &NodeLocks {
        &self.nodes
    }

    /// Whether the signer can sign now.
    pub fn ready(&self) -> bool {
        (self.ready)()
    }

    /// Swaps in a new approval policy (a reloaded node inventory); decisions already being made
    /// finish with the old one.
    pub fn replace_approver(&self, approver: Approver) {
        let mut slot = self
            .approver
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Arc::new(approver);
    }

    /// The current approval policy.
    pub fn approver(&self) -> Arc<Approver> {
        Arc::clone(
            &self
                .approver
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Validates an already parsed request with the rest of its spec.
    pub fn validate(
        &self,
        request: CsrRequest,
        fields: &SpecFields,
    ) -> Result<ValidatedCsr, CsrRejection> {
        crate::issue::validate_request(request, fields, &self.cfg)
    }

    /// What the API does with a new CSR given its validation: store it as valid, fail it,
    /// refuse it (403 admission, 422 invalid).
    pub fn inspect(&self, validated: Result<&ValidatedCsr, &CsrRejection>) -> Inspection {
        match validated {
            Ok(v) => match crate::issue::admit(v, &self.admin_groups) {
                Ok(()) => Inspection::Valid,
                Err(r) => Inspection::AdmissionDenied {
                    message: r.to_string(),
                },
            },
            Err(CsrRejection::Invalid(e)) => Inspection::Invalid {
                field: e.field(),
                message: e.to_string(),
            },
            Err(CsrRejection::SignerValidation(f)) => Inspection::SignerRuleViolation {
                message: f.to_string(),
            },
            Err(CsrRejection::NotOurSigner { signer_name }) => Inspection::UnknownSigner {
                message: crate::core::unknown_signer::unknown_signer_message(signer_name),
            },
        }
    }

    /// Whether this valid CSR's peer address may be recorded as its node's first bootstrap
    /// address once it is approved: trust on first use is on, the requester is in a bootstrap
    /// group and the CSR is a node client CSR.
    pub fn records_first_address(&self, v: &ValidatedCsr) -> bool {
        self.cfg.record_first_bootstrap_address
            && v.signer == SignerName::KubeletClient
            && matches!(v.identity, SubjectIdentity::Node(_))
            && self.approver().is_bootstrap_requester(&v.requester)
    }

    /// The approval decision for a validated CSR, as the condition to write.
    pub fn decide(&self, v: &ValidatedCsr, facts: &NodeFacts, csr_name: &str) -> Decision {
        let d = self
            .approver()
            .decide(v, &v.requester, facts, SystemTime::now());
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
                tracing::info!(csr = csr_name, rule, %why, "csr left pending");
                Decision::Pending { rule }
            }
        }
    }

    /// Signs an approved, validated CSR (blocking: one token signature, verified before it
    /// leaves the signer; the certificate compared with the profile).
    pub fn sign(&self, v: &ValidatedCsr) -> Result<Issued, IssueError> {
        let started = std::time::Instant::now();
        let now = SystemTime::now();
        let issued = self.issuer.issue(v, now);
        crate::metrics::global()
            .issuance_seconds
            .observe(started.elapsed().as_secs_f64());
        let certificate = issued?;
        let record = match &v.identity {
            SubjectIdentity::Node(n) if v.signer == SignerName::KubeletClient => {
                Some(IssuedRecord {
                    node_name: n.as_str().to_owned(),
                    serial_hex: certificate.serial.clone(),
                    not_after_unix: unix_secs(certificate.not_after),
                    issued_unix: unix_secs(now),
                })
            }
            _ => None,
        };
        Ok(Issued {
            certificate,
            record,
        })
    }

    /// The whole create-time path on one validated result: inspection, decision and, when
    /// approved and `before_sign` (called with the decision) agrees, the signature.
    pub fn process(
        &self,
        validated: Result<&ValidatedCsr, &CsrRejection>,
        facts: &NodeFacts,
        csr_name: &str,
        before_sign: &mut dyn FnMut(&Decision) -> bool,
    ) -> Outcome {
        let inspection = self.inspect(validated);
        let (Inspection::Valid, Ok(v)) = (&inspection, validated) else {
            return Outcome {
                inspection,
                decision: None,
                signed: None,
            };
        };
        let decision = self.decide(v, facts, csr_name);
        let signed =
            (matches!(decision, Decision::Approve { .. }) && before_sign(&decision)).then(|| {
                self.sign(v).map_err(|e| {
                    tracing::warn!(error = %e, "issuing failed; will retry");
                    SignFailure::Unavailable
                })
            });
        Outcome {
            inspection,
            decision: Some(decision),
            signed,
        }
    }
}

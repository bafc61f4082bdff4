//! [`Issuance`] over the real core: `issue::validate` + `issue::admit` on create, the approval
//! rules, and `issue::Issuer::issue` (one token signature) for approved CSRs.
//!
//! The approval rules here are the design's (bootstrap, renewal; serving waits for an admin)
//! and stand in until `policy::Approver` lands; `decide` is the one place to swap it in.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::error::Cause;
use super::hooks::{Caller, Decision, Inspection, Issuance, Issued, SignFailure};
use crate::authn::AuthMethod;
use crate::config::IssuanceConfig;
use crate::issue::{CsrRejection, Issuer, SignerName, SubjectIdentity, ValidatedCsr};
use crate::store::{IssuedRecord, NodeState};

/// Condition reason for an automatic approval (upstream's).
pub const AUTO_APPROVED: &str = "AutoApproved";

/// Readiness of the signer (the token signer's `ready()`).
pub type ReadyFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// Validation, approval and signing with the appliance's CA.
pub struct Engine {
    issuer: Issuer,
    cfg: IssuanceConfig,
    ready: ReadyFn,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn group_matches(pattern: &str, group: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => group.starts_with(prefix),
        None => pattern == group,
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn approve(message: &str) -> Decision {
    Decision::Approve {
        reason: AUTO_APPROVED.to_owned(),
        message: message.to_owned(),
    }
}

fn deny(reason: &str, message: String) -> Decision {
    Decision::Deny {
        reason: reason.to_owned(),
        message,
    }
}

impl Engine {
    /// An engine over `issuer`, with the issuance config and the signer's readiness.
    pub fn new(issuer: Issuer, cfg: IssuanceConfig, ready: ReadyFn) -> Engine {
        Engine { issuer, cfg, ready }
    }

    fn validated(&self, csr: &CertificateSigningRequest) -> Result<ValidatedCsr, CsrRejection> {
        crate::issue::validate(&csr.spec, &self.cfg)
    }

    fn decide_client(&self, v: &ValidatedCsr, caller: &Caller, node: NodeState) -> Decision {
        let SubjectIdentity::Node(name) = &v.identity else {
            return Decision::Pending;
        };
        if node.disabled {
            return deny(
                "NodeDisabled",
                format!("node {} is disabled", name.as_str()),
            );
        }
        // Renewal: a node (system:node:<n> in system:nodes) asking for its own name.
        if crate::authz::node_name(caller) == Some(name.as_str()) {
            return approve(
                "Auto approving self kubelet client certificate after SubjectAccessReview.",
            );
        }
        let auto = caller.groups.iter().any(|g| {
            self.cfg
                .auto_approve_groups
                .iter()
                .any(|p| group_matches(p, g))
        });
        if !auto {
            return Decision::Pending;
        }
        if let AuthMethod::BootstrapToken(info) = &caller.method
            && !info.allows_node(name.as_str())
        {
            return deny(
                "NodeNameNotAllowed",
                format!(
                    "the bootstrap token may not bootstrap node {}",
                    name.as_str()
                ),
            );
        }
        if node.unexpired_certificate {
            // A stolen token must not mint a second identity for a live node: wait for an admin.
            return Decision::Pending;
        }
        approve("Auto approving kubelet client certificate after SubjectAccessReview.")
    }
}

impl Issuance for Engine {
    fn inspect(&self, csr: &CertificateSigningRequest) -> Inspection {
        match self.validated(csr) {
            Ok(v) => match crate::issue::admit(&v, &self.cfg) {
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
            Err(e @ CsrRejection::NotOurSigner { .. }) => Inspection::AdmissionDenied {
                message: e.to_string(),
            },
        }
    }

    fn decide(
        &self,
        csr: &CertificateSigningRequest,
        caller: &Caller,
        node: NodeState,
    ) -> Decision {
        match self.validated(csr) {
            Ok(v) if v.signer == SignerName::KubeletClient => self.decide_client(&v, caller, node),
            _ => Decision::Pending,
        }
    }

    fn ready(&self) -> bool {
        (self.ready)()
    }

    fn sign(&self, csr: &CertificateSigningRequest) -> Result<Issued, SignFailure> {
        let v = self.validated(csr).map_err(|e| SignFailure::Refused {
            message: e.to_string(),
        })?;
        let now = SystemTime::now();
        let cert = self.issuer.issue(&v, now).map_err(|e| {
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

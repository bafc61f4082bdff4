//! The narrow interfaces the API calls for the parts other layers own: authentication
//! (`authn`) and CSR validation, approval and signing (`issue`, `policy`, `signer`).
//! Authorization is `authz`'s pure functions, called directly.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rustls_pki_types::CertificateDer;

use super::error::Cause;
use crate::store::{IssuedRecord, NodeState};

pub use crate::authn::AuthnOutcome as AuthnResult;
/// The authenticated caller (`authn::Identity`).
pub use crate::authn::Identity as Caller;
pub use crate::authz::{CsrFacts, Verb};

/// Authentication: implemented by `authn::Authenticator`; tests may plug in a fixed caller.
pub trait Authenticate: Send + Sync + 'static {
    /// Authenticates from the verified client chain and the `Authorization` header.
    fn authenticate(
        &self,
        client_chain: Option<&[CertificateDer<'static>]>,
        authorization: Option<&[u8]>,
    ) -> AuthnResult;
}

impl Authenticate for crate::authn::Authenticator {
    fn authenticate(
        &self,
        client_chain: Option<&[CertificateDer<'static>]>,
        authorization: Option<&[u8]>,
    ) -> AuthnResult {
        crate::authn::Authenticator::authenticate(
            self,
            client_chain,
            authorization,
            std::time::SystemTime::now(),
        )
    }
}

/// The outcome of checking a new CSR's request against its signer's rules.
#[derive(Debug, Clone)]
pub enum Inspection {
    /// Valid for its signer.
    Valid,
    /// A signer-rule violation: stored, then marked `Failed` / `SignerValidationFailure`.
    SignerRuleViolation {
        /// Client-safe reason.
        message: String,
    },
    /// A signer name this appliance does not sign for (and not a refused built-in name): stored,
    /// then marked `Failed` / `UnknownSigner` (upstream silently leaves such CSRs pending).
    UnknownSigner {
        /// Client-safe reason naming the signer.
        message: String,
    },
    /// Refused by admission before storing (403).
    AdmissionDenied {
        /// Client-safe reason.
        message: String,
    },
    /// The request itself is invalid (422 with causes).
    Invalid(Vec<Cause>),
}

/// The approver's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write `Approved`.
    Approve {
        /// Condition reason (`AutoApproved`).
        reason: String,
        /// Condition message.
        message: String,
    },
    /// Write `Denied`.
    Deny {
        /// Condition reason.
        reason: String,
        /// Condition message.
        message: String,
    },
    /// Leave for a human.
    Pending,
}

/// A certificate the signer produced.
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM chain, leaf first.
    pub pem_chain: Vec<u8>,
    /// The record kept for the node.
    pub record: Option<IssuedRecord>,
}

/// Why signing did not produce a certificate.
#[derive(Debug, Clone)]
pub enum SignFailure {
    /// The signer (HSM) is down: leave the CSR approved, retry later.
    Unavailable,
    /// The signer refused this CSR: mark it `Failed`.
    Refused {
        /// Client-safe reason.
        message: String,
    },
}

/// Everything decided about a new CSR before it is stored ([`Issuance::process`]).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The check of its request.
    pub inspection: Inspection,
    /// The approver's decision (only for a valid request).
    pub decision: Option<Decision>,
    /// The certificate, or why there is none, when approved and signing was asked for.
    pub signed: Option<Result<Issued, SignFailure>>,
    /// The requested subject and SANs for the audit log, when the request was parsed here
    /// (so that the store does not parse it again).
    pub requested: Option<(String, Vec<String>)>,
}

/// Validation, approval and signing (implemented over `issue` + `policy` + `signer`).
pub trait Issuance: Send + Sync + 'static {
    /// Inspects a new CSR, decides its approval and, when approved and `before_sign` (called
    /// with the decision) agrees, signs it: the whole create path on one blocking thread. The engine parses and verifies the
    /// request once for all three; this default composes the single steps.
    fn process(
        &self,
        csr: &CertificateSigningRequest,
        caller: &Caller,
        node: NodeState,
        before_sign: &mut dyn FnMut(&Decision) -> bool,
    ) -> Outcome {
        let inspection = self.inspect(csr);
        if !matches!(inspection, Inspection::Valid) {
            return Outcome {
                inspection,
                decision: None,
                signed: None,
                requested: None,
            };
        }
        let decision = self.decide(csr, caller, node);
        let signed = (matches!(decision, Decision::Approve { .. }) && before_sign(&decision))
            .then(|| self.sign(csr));
        Outcome {
            inspection,
            decision: Some(decision),
            signed,
            requested: None,
        }
    }
    /// Checks a new CSR's spec (signature, signer rules). Runs on a blocking thread.
    fn inspect(&self, csr: &CertificateSigningRequest) -> Inspection;
    /// Decides approval for a stored, valid CSR.
    fn decide(&self, csr: &CertificateSigningRequest, caller: &Caller, node: NodeState)
    -> Decision;
    /// Whether the signer can sign now (readiness).
    fn ready(&self) -> bool;
    /// Whether the peer address of the connection that created this (valid, stored) CSR is
    /// to be recorded as its node's first bootstrap address: trust on first use is on, the
    /// requester is in a bootstrap group and the CSR is a node client CSR. Default: never.
    fn records_first_address(&self, _csr: &CertificateSigningRequest, _caller: &Caller) -> bool {
        false
    }
    /// Signs an approved CSR. Blocking: called on a blocking thread.
    fn sign(&self, csr: &CertificateSigningRequest) -> Result<Issued, SignFailure>;
}

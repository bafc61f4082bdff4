//! The narrow interfaces the API calls for the parts other layers own: authentication
//! (`authn`), authorization (`authz`), and CSR validation, approval and signing (`issue`,
//! `policy`, `signer`). `serve` plugs the real implementations in; tests plug in real parts
//! too, never mocks of the HTTP layer.

use std::collections::BTreeMap;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rustls_pki_types::CertificateDer;

use super::error::Cause;
use crate::store::{IssuedRecord, NodeState};

/// The authenticated caller, as the API sees it (the shape of `authn::Identity`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    /// User name (`system:node:node1`, `system:bootstrap:abcdef`, `kubesigner-admin`).
    pub user: String,
    /// UID; empty when the method has none.
    pub uid: String,
    /// Groups, including `system:authenticated`.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: BTreeMap<String, Vec<String>>,
    /// Node-name patterns a bootstrap token is bound to (empty = unbound or not a token).
    pub node_name_patterns: Vec<String>,
}

/// The result of authenticating one request.
#[derive(Debug, Clone)]
pub enum AuthnResult {
    /// A known caller.
    Authenticated(Caller),
    /// No credentials at all.
    Anonymous,
    /// Bad or expired credentials (one 401, never a hint which).
    Rejected,
}

/// Authentication (implemented over `authn::Authenticator`).
pub trait Authenticate: Send + Sync + 'static {
    /// Authenticates from the verified client chain and the `Authorization` header.
    fn authenticate(
        &self,
        client_chain: Option<&[CertificateDer<'static>]>,
        authorization: Option<&[u8]>,
    ) -> AuthnResult;
}

/// What the API asks the authorizer about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET one CSR.
    Get,
    /// LIST CSRs.
    List,
    /// WATCH CSRs.
    Watch,
    /// POST a CSR.
    Create,
    /// DELETE a CSR.
    Delete,
    /// PUT `/approval`.
    UpdateApproval,
    /// PUT `/status`.
    UpdateStatus,
    /// PUT the main resource (metadata only).
    Update,
    /// Discovery, `/version`, OpenAPI.
    Discovery,
}

/// The facts of one CSR the authorizer looks at.
#[derive(Debug, Clone, Copy)]
pub struct CsrFacts<'a> {
    /// `spec.username` of the stored object (or the caller's, on create).
    pub requester_username: &'a str,
    /// Subject CN of the request, when it parsed.
    pub subject_cn: Option<&'a str>,
    /// `spec.signerName`.
    pub signer_name: &'a str,
}

/// Authorization (implemented over `authz::authorize`).
pub trait Authorize: Send + Sync + 'static {
    /// `Err(message)` = 403 with that client-safe message.
    fn authorize(
        &self,
        caller: &Caller,
        verb: Verb,
        csr: Option<&CsrFacts<'_>>,
    ) -> Result<(), String>;
    /// Whether the CSR is the caller's own (for filtering lists and watches).
    fn may_see(&self, caller: &Caller, csr: &CsrFacts<'_>) -> bool;
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

/// Validation, approval and signing (implemented over `issue` + `policy` + `signer`).
pub trait Issuance: Send + Sync + 'static {
    /// Checks a new CSR's spec (signature, signer rules). Runs on a blocking thread.
    fn inspect(&self, csr: &CertificateSigningRequest) -> Inspection;
    /// Decides approval for a stored, valid CSR.
    fn decide(&self, csr: &CertificateSigningRequest, caller: &Caller, node: NodeState)
    -> Decision;
    /// Whether the signer can sign now (readiness).
    fn ready(&self) -> bool;
    /// Signs an approved CSR. Blocking: called on a blocking thread.
    fn sign(&self, csr: &CertificateSigningRequest) -> Result<Issued, SignFailure>;
}

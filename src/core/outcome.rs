//! What the core decides about a CSR, as the conditions both modes write.

use crate::issue::IssuedCertificate;
use crate::store::IssuedRecord;

/// The outcome of checking a new CSR's request against its signer's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The request itself is invalid (422 on this field).
    Invalid {
        /// The API field.
        field: &'static str,
        /// Client-safe reason.
        message: String,
    },
}

/// The approver's decision, as the condition to write.
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
        /// Condition reason (the rule, UpperCamelCase).
        reason: String,
        /// Condition message.
        message: String,
    },
    /// Leave for a human.
    Pending {
        /// The rule that holds it (`live_certificate_exists`, ...).
        rule: &'static str,
    },
}

/// A certificate the signer produced.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM chain, DER, serial, validity).
    pub certificate: IssuedCertificate,
    /// The record kept for the node (kubelet client certificates).
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

/// Everything decided about a new CSR before it is stored ([`super::Core::process`]).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The check of its request.
    pub inspection: Inspection,
    /// The approver's decision (only for a valid request).
    pub decision: Option<Decision>,
    /// The certificate, or why there is none, when approved and signing was asked for.
    pub signed: Option<Result<Issued, SignFailure>>,
}

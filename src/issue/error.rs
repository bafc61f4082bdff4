//! Outcomes of CSR validation and issuance errors.

use std::fmt;

use super::usage::UsageError;

/// A signer rule, named in `Failed` condition messages (`rule=<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The subject key algorithm is not RSA, ECDSA or Ed25519.
    KeyAlgorithm,
    /// ECDSA curve other than P-256/P-384.
    KeyCurve,
    /// RSA modulus outside the allowed range.
    RsaModulusSize,
    /// The CSR's signature algorithm (SHA-1, mismatched, unknown).
    SignatureAlgorithm,
    /// The CSR's self-signature does not verify.
    ProofOfPossession,
    /// Requested usages are not allowed by the signer profile.
    Usages,
    /// The subject common name.
    SubjectCommonName,
    /// The subject organization.
    SubjectOrganization,
    /// Subject attributes other than the ones the profile allows.
    SubjectAttributes,
    /// Subject alternative names (presence, count or type).
    SubjectAltNames,
    /// The CSR asks for a CA certificate (basicConstraints CA:TRUE).
    BasicConstraints,
    /// A subject attribute value in a string type the profile does not allow.
    SubjectStringType,
}

impl Rule {
    /// The stable rule name used in messages and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rule::KeyAlgorithm => "key_algorithm",
            Rule::KeyCurve => "key_curve",
            Rule::RsaModulusSize => "rsa_modulus_size",
            Rule::SignatureAlgorithm => "signature_algorithm",
            Rule::ProofOfPossession => "proof_of_possession",
            Rule::Usages => "usages",
            Rule::SubjectCommonName => "subject_common_name",
            Rule::SubjectOrganization => "subject_organization",
            Rule::SubjectAttributes => "subject_attributes",
            Rule::SubjectAltNames => "subject_alt_names",
            Rule::BasicConstraints => "basic_constraints",
            Rule::SubjectStringType => "subject_string_type",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CSR breaks a signer rule: the API writes a `Failed` condition with reason
/// `SignerValidationFailure` and this as the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: requested {requested}, allowed {allowed}")]
pub struct SignerValidationFailure {
    /// The rule that fired.
    pub rule: Rule,
    /// What the CSR asked for.
    pub requested: String,
    /// What the profile allows.
    pub allowed: String,
}

impl SignerValidationFailure {
    /// Builds a failure.
    pub fn new(rule: Rule, requested: impl Into<String>, allowed: impl Into<String>) -> Self {
        SignerValidationFailure {
            rule,
            requested: requested.into(),
            allowed: allowed.into(),
        }
    }
}

/// The request does not pass the CSR API's own validation (reference §1.3): the API answers
/// 422 `Invalid` on create, naming `field`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    /// `spec.request` is not one PEM `CERTIFICATE REQUEST` holding a PKCS#10 structure
    /// within the bounds.
    #[error("spec.request: {0}")]
    Request(#[from] RequestError),
    /// `spec.usages` is empty, unknown or has duplicates.
    #[error("{0}")]
    Usages(#[from] UsageError),
    /// `spec.expirationSeconds` below the API minimum.
    #[error("spec.expirationSeconds: {requested} is less than the minimum {minimum}")]
    ExpirationTooShort {
        /// The value given.
        requested: i64,
        /// The API minimum (600).
        minimum: i64,
    },
}

impl InvalidRequest {
    /// The API field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            InvalidRequest::Request(_) => "spec.request",
            InvalidRequest::Usages(_) => "spec.usages",
            InvalidRequest::ExpirationTooShort { .. } => "spec.expirationSeconds",
        }
    }
}

/// Why `spec.request` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Bigger than the named bound.
    #[error("{len} bytes exceed the limit of {max}")]
    TooLarge {
        /// Size given.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not PEM, or a PEM block of another type.
    #[error("not a PEM CERTIFICATE REQUEST block")]
    NotPem,
    /// Not exactly one PEM block with only whitespace around it.
    #[error("must be exactly one PEM CERTIFICATE REQUEST block: {0}")]
    Framing(&'static str),
    /// The DER inside does not parse as PKCS#10.
    #[error("malformed PKCS#10 ({0})")]
    Der(String),
    /// A count over its named bound (RDNs, attributes, extensions, SANs).
    #[error("{what}: {count} exceeds the limit of {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The bound.
        max: usize,
    },
}

/// The overall result of validating a CSR when it is not signable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrRejection {
    /// API validation failure (422 on create).
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// A signer rule is broken: `Failed` / `SignerValidationFailure`.
    #[error(transparent)]
    SignerValidation(#[from] SignerValidationFailure),
    /// The appliance does not sign for this signer name (unknown, disabled, or
    /// `kubernetes.io/legacy-unknown`): leave the CSR to whoever does; refuse on create for
    /// `legacy-unknown`.
    #[error("signer {signer_name:?} is not served by this appliance")]
    NotOurSigner {
        /// The name requested (truncated to the API maximum of 571 characters).
        signer_name: String,
    },
}

impl From<RequestError> for CsrRejection {
    fn from(e: RequestError) -> Self {
        CsrRejection::Invalid(InvalidRequest::Request(e))
    }
}

/// Why issuing a validated CSR failed. None of these is the requester's fault: the API keeps
/// the CSR approved and retries (like kube-controller-manager), and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The CA certificate has expired (or expires before the backdated NotBefore).
    #[error("the CA certificate has expired")]
    CaExpired,
    /// A time computation overflowed.
    #[error("certificate validity out of range")]
    TimeOutOfRange,
    /// No CA is configured for this signer name.
    #[error("no CA configured for signer {signer}")]
    NoCa {
        /// The signer name.
        signer: super::names::SignerName,
    },
    /// The token key's public key is not the CA certificate's.
    #[error("the signing key does not match the CA certificate {subject}")]
    KeyMismatch {
        /// The CA subject.
        subject: String,
    },
    /// The random source failed.
    #[error("random number generator failure")]
    Random,
    /// Building or encoding the certificate failed.
    #[error("certificate encoding failed: {0}")]
    Build(String),
    /// The signer failed (token error, or a signature that did not verify).
    #[error("signing failed: {0}")]
    Sign(String),
    /// The finished certificate does not match the profile (the post-build check).
    #[error("issued certificate does not match the profile: {what}")]
    ProfileMismatch {
        /// The field that differs.
        what: &'static str,
    },
}

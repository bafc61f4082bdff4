//! From a CSR spec to a [`ValidatedCsr`]: the API-level checks (reference §1.3), the key rules
//! and proof of possession, and the signer profile. Also the create-time admission check.

use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;

use super::csr::{CsrRequest, ParsedCsr};
use super::error::{CsrRejection, InvalidRequest};
use super::names::{MAX_SIGNER_NAME_LEN, SignerName};
use super::oids;
use super::profile::{SubjectIdentity, profile_for};
use super::subject::AttrValue;
use super::usage::UsageSet;
use crate::config::IssuanceConfig;

/// API minimum for `spec.expirationSeconds` (reference §1.3).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The authenticated identity that created the CSR (`spec.username/uid/groups`, which the
/// server overwrites on create).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    /// User name, e.g. `system:bootstrap:abcdef` or `system:node:n1`.
    pub username: String,
    /// User UID (may be empty).
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// The parts of a CSR spec the engine reads.
#[derive(Debug, Clone)]
pub struct CsrInput {
    /// `spec.request`: the PEM text.
    pub request_pem: Vec<u8>,
    /// `spec.signerName`.
    pub signer_name: String,
    /// `spec.usages`.
    pub usages: Vec<String>,
    /// `spec.expirationSeconds`.
    pub expiration_seconds: Option<i64>,
    /// `spec.username/uid/groups`.
    pub requester: Requester,
}

impl CsrInput {
    /// The fields besides the request.
    pub fn fields(&self) -> SpecFields {
        SpecFields {
            signer_name: self.signer_name.clone(),
            usages: self.usages.clone(),
            expiration_seconds: self.expiration_seconds,
            requester: self.requester.clone(),
        }
    }
}

/// The parts of a CSR spec besides `spec.request` that validation reads.
#[derive(Debug, Clone)]
pub struct SpecFields {
    /// `spec.signerName`.
    pub signer_name: String,
    /// `spec.usages`.
    pub usages: Vec<String>,
    /// `spec.expirationSeconds`.
    pub expiration_seconds: Option<i64>,
    /// `spec.username/uid/groups`.
    pub requester: Requester,
}

impl SpecFields {
    /// Takes the fields from a `certificates.k8s.io/v1` spec.
    pub fn from_spec(spec: &CertificateSigningRequestSpec) -> SpecFields {
        SpecFields {
            signer_name: spec.signer_name.clone(),
            usages: spec.usages.clone().unwrap_or_default(),
            expiration_seconds: spec.expiration_seconds.map(i64::from),
            requester: Requester {
                username: spec.username.clone().unwrap_or_default(),
                uid: spec.uid.clone().unwrap_or_default(),
                groups: spec.groups.clone().unwrap_or_default(),
            },
        }
    }
}

/// A CSR that passed every signer rule: it may be signed once approved.
#[derive(Debug, Clone)]
pub struct ValidatedCsr {
    /// The signer name.
    pub signer: SignerName,
    /// The parsed request.
    pub csr: ParsedCsr,
    /// The usages requested.
    pub usages: UsageSet,
    /// The lifetime requested (`expirationSeconds`), if any.
    pub requested_ttl: Option<Duration>,
    /// The identity the subject names.
    pub identity: SubjectIdentity,
    /// Who created the CSR.
    pub requester: Requester,
}

/// Parses and validates a spec (see [`validate_request`]): for a CSR object read from the
/// cluster (controller mode), whose request is parsed here, once.
pub fn validate(
    spec: &CertificateSigningRequestSpec,
    cfg: &IssuanceConfig,
) -> Result<ValidatedCsr, CsrRejection> {
    let fields = SpecFields::from_spec(spec);
    let checked = check_fields(&fields, cfg)?;
    let request = CsrRequest::parse(&spec.request.0)?;
    finish(request, checked, fields.requester)
}

/// Validates a CSR given as [`CsrInput`] (tests, fuzzing): the same steps as [`validate`].
pub fn validate_input(
    input: &CsrInput,
    cfg: &IssuanceConfig,
) -> Result<ValidatedCsr, CsrRejection> {
    let fields = input.fields();
    let checked = check_fields(&fields, cfg)?;
    let request = CsrRequest::parse(&input.request_pem)?;
    finish(request, checked, fields.requester)
}

/// Validates an already parsed request with the rest of its spec: signer served, usages,
/// expirationSeconds, then key rules + proof of possession and the signer profile on `request`
/// itself (never on a second parse of the PEM).
pub fn validate_request(
    request: CsrRequest,
    fields: &SpecFields,
    cfg: &IssuanceConfig,
) -> Result<ValidatedCsr, CsrRejection> {
    let checked = check_fields(fields, cfg)?;
    finish(request, checked, fields.requester.clone())
}

/// The spec fields besides the request, checked.
struct Checked {
    signer: SignerName,
    usages: UsageSet,
    requested_ttl: Option<Duration>,
}

fn check_fields(fields: &SpecFields, cfg: &IssuanceConfig) -> Result<Checked, CsrRejection> {
    let signer = served_signer(&fields.signer_name, cfg)?;
    let usages = UsageSet::parse(&fields.usages).map_err(InvalidRequest::from)?;
    let requested_ttl = match fields.expiration_seconds {
        Some(s) if s < MIN_EXPIRATION_SECONDS => {
            return Err(InvalidRequest::ExpirationTooShort {
                requested: s,
                minimum: MIN_EXPIRATION_SECONDS,
            }
            .into());
        }
        Some(s) => Some(Duration::from_secs(s.unsigned_abs())),
        None => None,
    };
    Ok(Checked {
        signer,
        usages,
        requested_ttl,
    })
}

fn finish(
    request: CsrRequest,
    checked: Checked,
    requester: Requester,
) -> Result<ValidatedCsr, CsrRejection> {
    let csr = request.verify()?;
    let identity = profile_for(checked.signer).check(&csr, &checked.usages)?;
    Ok(ValidatedCsr {
        signer: checked.signer,
        csr,
        usages: checked.usages,
        requested_ttl: checked.requested_ttl,
        identity,
        requester,
    })
}

fn served_signer(name: &str, cfg: &IssuanceConfig) -> Result<SignerName, CsrRejection> {
    SignerName::parse(name)
        .filter(|s| cfg.signers.iter().any(|c| c == s.as_str()))
        .ok_or_else(|| CsrRejection::NotOurSigner {
            signer_name: name.chars().take(MAX_SIGNER_NAME_LEN).collect(),
        })
}

/// Refused at create time (the API answers 403 Forbidden).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionRefusal {
    /// A `kube-apiserver-client` CSR asks for an admin group in O (upstream's
    /// `CertificateSubjectRestriction`, extended to the configured admin groups).
    #[error("signer {signer} may not issue certificates for the admin group {group:?}")]
    AdminGroup {
        /// The signer name.
        signer: SignerName,
        /// The group requested.
        group: String,
    },
}

/// The create-time admission check, on a validated CSR: `kube-apiserver-client` CSRs naming
/// `system:masters` or one of `admin_groups` (`[auth] admin_groups`) in O are refused.
pub fn admit(csr: &ValidatedCsr, admin_groups: &[String]) -> Result<(), AdmissionRefusal> {
    if csr.signer != SignerName::ApiserverClient {
        return Ok(());
    }
    // Every O value, decoded whatever its string type (the profile refused any value that
    // is not a supported string, so none is skipped here).
    let admin = |o: &&str| *o == "system:masters" || admin_groups.iter().any(|g| g == o);
    match csr
        .csr
        .subject
        .values(oids::ORGANIZATION)
        .filter_map(AttrValue::text)
        .find(admin)
    {
        Some(group) => Err(AdmissionRefusal::AdminGroup {
            signer: csr.signer,
            group: group.to_owned(),
        }),
        None => Ok(()),
    }
}

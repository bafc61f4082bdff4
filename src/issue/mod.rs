//! Issuance: CSR parsing and proof of possession, one profile per signer name, the certificate
//! builder, and the CA certificate.
//!
//! Flow: [`validate`] (API rules, key rules, proof of possession, signer profile) →
//! [`admit`] (create-time admission) → approval (`crate::policy`) → [`Issuer::issue`].

mod admin;
pub mod ca;
mod check;
mod csr;
mod error;
mod ext;
mod issuer;
mod key;
mod leaf;
pub mod names;
pub mod oids;
mod profile;
pub mod rfc4514;
mod serial;
pub mod subject;
mod usage;
mod validate;
mod validity;

pub use admin::{ADMIN_COMMON_NAME, AdminCertificate, admin_client_certificate};
pub use ca::{CaBundle, CaError, CaProfile};
pub use csr::{
    CsrRequest, MAX_ATTRIBUTES, MAX_CSR_PEM_BYTES, MAX_REQUESTED_EXTENSIONS, MAX_SANS,
    MAX_SUBJECT_RDNS, ParsedCsr, San, parse_csr,
};
pub use error::{
    CsrRejection, InvalidRequest, IssueError, RequestError, Rule, SignerValidationFailure,
};
pub use issuer::{IssuedCertificate, Issuer};
pub use key::{MAX_RSA_BITS, MIN_RSA_BITS, SubjectKey};
pub use leaf::LeafContents;
pub use names::{NodeName, SignerName};
pub use profile::{
    ApiserverClientProfile, KubeletClientProfile, KubeletServingProfile, Purpose, SanPolicy,
    SignerProfile, SubjectIdentity, profile_for,
};
pub use serial::{SerialError, random_serial};
pub use subject::{AttrValue, StringType, Subject, SubjectAttr};
pub use usage::{Usage, UsageError, UsageSet};
pub use validate::{
    AdmissionRefusal, CsrInput, MIN_EXPIRATION_SECONDS, Requester, SpecFields, ValidatedCsr, admit,
    validate, validate_input, validate_request,
};
pub use validity::{BACKDATE, LONG_TTL, Window, window};

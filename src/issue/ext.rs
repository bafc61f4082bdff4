//! Small helpers to write extensions with explicit criticality.

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::Encode;
use der::asn1::OctetString;
use der::referenced::OwnedToRef;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

/// Encodes `value` as the extension `T::OID` with the given criticality.
pub fn extension<T: AssociatedOid + Encode>(value: &T, critical: bool) -> der::Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// RFC 5280 §4.2.1.2 method 1 key identifier (SHA-1 of the subjectPublicKey bits).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> der::Result<SubjectKeyIdentifier> {
    SubjectKeyIdentifier::try_from(spki.owned_to_ref())
}

/// The extension `oid` of a certificate, if present.
pub fn find(cert: &Certificate, oid: ObjectIdentifier) -> Option<&Extension> {
    cert.tbs_certificate()
        .extensions()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == oid))
}

//! Client-certificate identity (reference §5.3): the TLS layer has verified the chain and the
//! clientAuth EKU; here the leaf's subject becomes the identity — CN = user, every O = a group.

use std::collections::BTreeMap;

use const_oid::db::rfc4519;
use const_oid::db::rfc5280::ID_KP_CLIENT_AUTH;
use der::Decode;
use rustls_pki_types::CertificateDer;
use x509_cert::Certificate;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::ext::pkix::name::DirectoryString;

use super::AuthnFailure;

/// The `extra` key upstream uses for the credential id (reference §5.3).
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// The parts of a verified client leaf that make an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertIdentity {
    pub user: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

fn directory_string(atv: &x509_cert::attr::AttributeTypeAndValue) -> Result<String, AuthnFailure> {
    DirectoryString::try_from(&atv.value)
        .map(|s| s.value().into_owned())
        .map_err(|_| AuthnFailure::BadCertificate)
}

/// Maps a verified leaf to an identity; `Ok(None)` when the CN is missing or empty (the
/// certificate is then not used for authentication, as upstream).
pub(crate) fn identity_from_leaf(
    leaf: &CertificateDer<'_>,
) -> Result<Option<CertIdentity>, AuthnFailure> {
    let cert = Certificate::from_der(leaf.as_ref()).map_err(|_| AuthnFailure::BadCertificate)?;
    let tbs = cert.tbs_certificate();
    // Defence in depth: the TLS verifier already demands clientAuth when an EKU is present.
    match tbs.get_extension::<ExtendedKeyUsage>() {
        Ok(None) => {}
        Ok(Some((_, eku))) if eku.0.contains(&ID_KP_CLIENT_AUTH) => {}
        Ok(Some(_)) => return Err(AuthnFailure::NotClientAuth),
        Err(_) => return Err(AuthnFailure::BadCertificate),
    }
    let mut user = None;
    let mut groups = Vec::new();
    for atv in tbs.subject().iter() {
        if atv.oid == rfc4519::COMMON_NAME && user.is_none() {
            user = Some(directory_string(atv)?);
        } else if atv.oid == rfc4519::ORGANIZATION_NAME {
            groups.push(directory_string(atv)?);
        }
    }
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let fingerprint = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
    let mut extra = BTreeMap::new();
    extra.insert(
        CREDENTIAL_ID_KEY.to_owned(),
        vec![format!("X509SHA256={}", hex::encode(fingerprint.as_ref()))],
    );
    Ok(Some(CertIdentity {
        user,
        groups,
        extra,
    }))
}

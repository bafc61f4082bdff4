//! The end-entity certificate profile: what every issued certificate carries, decided from the
//! signer profile and the validated CSR.

use der::asn1::{Ia5String, OctetString};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;

use super::csr::San;
use super::ext::extension;
use super::oids;
use super::profile::{Purpose, SanPolicy, profile_for};
use super::usage::Usage;
use super::validate::ValidatedCsr;

/// Everything a leaf certificate will contain besides serial and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafContents {
    /// Issuer = the CA's subject.
    pub issuer: Name,
    /// Subject, copied from the CSR.
    pub subject: Name,
    /// KeyUsage bits.
    pub key_usage: KeyUsage,
    /// The EKU OID.
    pub eku: der::oid::ObjectIdentifier,
    /// SANs copied (only where the profile allows).
    pub sans: Vec<San>,
    /// The AKI key identifier (the CA's SKI).
    pub authority_key_id: Vec<u8>,
}

impl LeafContents {
    /// Decides the contents for a validated CSR.
    pub fn for_csr(csr: &ValidatedCsr, issuer: Name, authority_key_id: Vec<u8>) -> LeafContents {
        let profile = profile_for(csr.signer);
        let mut ku = KeyUsages::DigitalSignature.into();
        // keyEncipherment only for RSA subject keys: dropped, not refused, for EC/Ed25519.
        if csr.usages.contains(Usage::KeyEncipherment) && csr.csr.key.is_rsa() {
            ku |= KeyUsages::KeyEncipherment;
        }
        let eku = match profile.purpose() {
            Purpose::ClientAuth => oids::KP_CLIENT_AUTH,
            Purpose::ServerAuth => oids::KP_SERVER_AUTH,
        };
        let sans = match profile.san_policy() {
            SanPolicy::None => Vec::new(),
            SanPolicy::DnsOrIpRequired => csr.csr.sans.clone(),
        };
        LeafContents {
            issuer,
            subject: csr.csr.subject.name().clone(),
            key_usage: KeyUsage(ku),
            eku,
            sans,
            authority_key_id,
        }
    }

    /// The SAN extension value, if any SAN is copied.
    pub fn san_extension(&self) -> der::Result<Option<SubjectAltName>> {
        if self.sans.is_empty() {
            return Ok(None);
        }
        let names = self
            .sans
            .iter()
            .filter_map(|s| match s {
                San::Dns(d) => Some(Ia5String::new(d).map(GeneralName::DnsName)),
                San::Ip(ip) => Some(Ok(GeneralName::from(*ip))),
                _ => None,
            })
            .collect::<der::Result<Vec<_>>>()?;
        Ok(Some(SubjectAltName(names)))
    }
}

impl BuilderProfile for LeafContents {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let bc = BasicConstraints {
            ca: false,
            path_len_constraint: None,
        };
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(self.authority_key_id.clone())?),
            ..Default::default()
        };
        let mut exts = vec![
            extension(&bc, true)?,
            extension(&self.key_usage, true)?,
            extension(&ExtendedKeyUsage(vec![self.eku]), false)?,
            extension(&SubjectKeyIdentifier::try_from(spk)?, false)?,
            extension(&aki, false)?,
        ];
        if let Some(san) = self.san_extension()? {
            // Non-critical: the subject is never empty (RFC 5280 §4.2.1.6).
            exts.push(extension(&san, false)?);
        }
        Ok(exts)
    }
}

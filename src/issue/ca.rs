//! The CA: its certificate bundle, the CA certificate profile (`ca init`), the PKCS#10 request
//! for an offline root (`ca csr`), and the import check (`ca import`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use der::{Decode, Encode, EncodePem, pem::LineEnding};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, RequestBuilder};
use x509_cert::time::{Time, Validity};

use super::ext::{extension, key_identifier};
use super::serial::random_serial;
use super::validity::BACKDATE;
use crate::signer::{KeyRef, KeySignature, SignKey};

/// Named bound: a CA bundle file holds at most this many certificates (CA + intermediates).
pub const MAX_CHAIN_CERTS: usize = 8;
/// Named bound: a CA bundle file is at most 64 KiB (8 RSA-8192 certificates fit easily).
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024;

/// Errors of CA certificate handling.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is over its named bound.
    #[error("{path} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: u64,
    },
    /// The PEM/DER does not parse as certificates.
    #[error("invalid certificate PEM: {0}")]
    Parse(String),
    /// No certificate, or more than the bound.
    #[error("expected 1 to {MAX_CHAIN_CERTS} certificates, found {found}")]
    Count {
        /// How many were found.
        found: usize,
    },
    /// The subject string does not parse as an RFC 4514 name.
    #[error("invalid subject {subject:?}: {message}")]
    Subject {
        /// The text given.
        subject: String,
        /// The parser's message.
        message: String,
    },
    /// The certificate's public key is not the token key's.
    #[error("the certificate's public key does not match the token key")]
    KeyMismatch,
    /// The certificate is not a CA certificate (basicConstraints CA:TRUE + keyCertSign).
    #[error("the certificate is not a CA certificate: {0}")]
    NotCa(&'static str),
    /// Building or signing failed.
    #[error("building the certificate failed: {0}")]
    Build(String),
}

/// The CA certificate and the chain above it.
#[derive(Debug, Clone)]
pub struct CaBundle {
    /// The CA certificate whose key signs.
    pub cert: Certificate,
    /// The certificates above it, up to and possibly including the root.
    pub chain: Vec<Certificate>,
}

impl CaBundle {
    /// Loads a PEM file: the CA certificate first, then its chain.
    pub fn load(path: &Path) -> Result<CaBundle, CaError> {
        let bytes = read_bounded(path)?;
        CaBundle::from_pem(&bytes)
    }

    /// Parses PEM text: the CA certificate first, then its chain.
    pub fn from_pem(pem: &[u8]) -> Result<CaBundle, CaError> {
        let mut certs =
            Certificate::load_pem_chain(pem).map_err(|e| CaError::Parse(e.to_string()))?;
        if certs.is_empty() || certs.len() > MAX_CHAIN_CERTS {
            return Err(CaError::Count { found: certs.len() });
        }
        let cert = certs.remove(0);
        check_is_ca(&cert)?;
        Ok(CaBundle { cert, chain: certs })
    }

    /// The CA's NotAfter.
    pub fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    /// The PEM blocks that follow a leaf in `status.certificate`: the CA certificate and its
    /// chain, leaving out self-signed certificates (roots).
    pub fn intermediates_pem(&self) -> Result<String, CaError> {
        let mut out = String::new();
        for c in std::iter::once(&self.cert).chain(self.chain.iter()) {
            if !is_self_issued(c) {
                out.push_str(&to_pem(c)?);
            }
        }
        Ok(out)
    }

    /// The whole bundle as PEM (CA first).
    pub fn to_pem(&self) -> Result<String, CaError> {
        let mut out = to_pem(&self.cert)?;
        for c in &self.chain {
            out.push_str(&to_pem(c)?);
        }
        Ok(out)
    }
}

/// Reads a certificate file, refusing one over [`MAX_BUNDLE_BYTES`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, CaError> {
    let read_err = |source| CaError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_BUNDLE_BYTES {
        return Err(CaError::TooLarge {
            path: path.to_owned(),
            max: MAX_BUNDLE_BYTES,
        });
    }
    std::fs::read(path).map_err(read_err)
}

/// One certificate as PEM.
pub fn to_pem(c: &Certificate) -> Result<String, CaError> {
    c.to_pem(LineEnding::LF)
        .map_err(|e| CaError::Build(e.to_string()))
}

fn is_self_issued(c: &Certificate) -> bool {
    c.tbs_certificate().issuer() == c.tbs_certificate().subject()
}

/// BasicConstraints CA:TRUE and (if KeyUsage is present) keyCertSign.
pub fn check_is_ca(cert: &Certificate) -> Result<(), CaError> {
    let tbs = cert.tbs_certificate();
    let bc = tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| CaError::Parse(e.to_string()))?;
    if !bc.is_some_and(|(_, bc)| bc.ca) {
        return Err(CaError::NotCa("basicConstraints CA:TRUE missing"));
    }
    let ku = tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| CaError::Parse(e.to_string()))?;
    if ku.is_some_and(|(_, ku)| !ku.key_cert_sign()) {
        return Err(CaError::NotCa("keyUsage lacks keyCertSign"));
    }
    Ok(())
}

/// Parses an RFC 4514 subject such as `CN=kubernetes` or `CN=kubernetes-ca,O=example`.
pub fn parse_subject(s: &str) -> Result<Name, CaError> {
    s.parse::<Name>().map_err(|e| CaError::Subject {
        subject: s.to_owned(),
        message: e.to_string(),
    })
}

/// The CA certificate profile: self-issued, BasicConstraints CA:TRUE pathLen 0 critical,
/// KeyUsage keyCertSign + cRLSign critical, SKI, AKI (= SKI). Unlike `cabf::Root` it accepts
/// a bare `CN=kubernetes`, as Kubernetes clusters use.
#[derive(Debug, Clone)]
pub struct CaProfile {
    /// The CA subject (= issuer).
    pub subject: Name,
}

impl BuilderProfile for CaProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
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
        let ski = x509_cert::ext::pkix::SubjectKeyIdentifier::try_from(spk)?;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(ski.0.clone()),
            ..Default::default()
        };
        let bc = BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        };
        Ok(vec![
            extension(&bc, true)?,
            extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
            extension(&ski, false)?,
            extension(&aki, false)?,
        ])
    }
}

/// `ca init`: a self-signed CA certificate for the token key.
pub fn self_signed_ca(
    key: &dyn SignKey,
    subject: Name,
    now: SystemTime,
    lifetime: Duration,
) -> Result<Certificate, CaError> {
    let build = |e: &dyn std::fmt::Display| CaError::Build(e.to_string());
    let range = || CaError::Build("validity out of range".to_owned());
    let not_after = now.checked_add(lifetime).ok_or_else(range)?;
    // Backdated like the leaves (reference §2.3), so a leaf issued right away nests inside.
    let not_before = now.checked_sub(BACKDATE).ok_or_else(range)?;
    let validity = Validity::new(
        Time::try_from(not_before).map_err(|e| build(&e))?,
        Time::try_from(not_after).map_err(|e| build(&e))?,
    );
    let serial = random_serial().map_err(|e| build(&e))?;
    let builder = CertificateBuilder::new(
        CaProfile { subject },
        serial,
        validity,
        key.public_key().clone(),
    )
    .map_err(|e| build(&e))?;
    builder
        .build::<_, KeySignature>(&KeyRef(key))
        .map_err(|e| build(&e))
}

/// `ca csr`: a PKCS#10 request for the token key, to be signed by an offline root.
pub fn ca_request(key: &dyn SignKey, subject: Name) -> Result<CertReq, CaError> {
    let build = |e: &dyn std::fmt::Display| CaError::Build(e.to_string());
    let builder = RequestBuilder::new(subject).map_err(|e| build(&e))?;
    builder
        .build::<_, KeySignature>(&KeyRef(key))
        .map_err(|e| build(&e))
}

/// `ca import`: checks a CA certificate (and chain) issued for the token key.
pub fn import(
    key: &dyn SignKey,
    cert_pem: &[u8],
    chain_pem: Option<&[u8]>,
) -> Result<CaBundle, CaError> {
    let mut pem = cert_pem.to_vec();
    if let Some(chain) = chain_pem {
        pem.push(b'\n');
        pem.extend_from_slice(chain);
    }
    let bundle = CaBundle::from_pem(&pem)?;
    let cert_key = bundle
        .cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| CaError::Parse(e.to_string()))?;
    let token_key = key
        .public_key()
        .to_der()
        .map_err(|e| CaError::Parse(e.to_string()))?;
    if cert_key != token_key {
        return Err(CaError::KeyMismatch);
    }
    Ok(bundle)
}

/// Parses one DER certificate (tests and tools).
pub fn certificate_from_der(der: &[u8]) -> Result<Certificate, CaError> {
    Certificate::from_der(der).map_err(|e| CaError::Parse(e.to_string()))
}

/// The key identifier the CA's issued certificates carry in AKI: the CA certificate's SKI if it
/// has one, else computed from its public key.
pub fn authority_key_id(cert: &Certificate) -> Result<Vec<u8>, CaError> {
    if let Ok(Some((_, ski))) = cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
    {
        return Ok(ski.0.as_bytes().to_vec());
    }
    key_identifier(cert.tbs_certificate().subject_public_key_info())
        .map(|k| k.0.as_bytes().to_vec())
        .map_err(|e| CaError::Parse(e.to_string()))
}

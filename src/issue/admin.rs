//! The admin client certificate for a software-generated key (the dev mode's admin
//! kubeconfig): `CN=kubesigner-admin, O=system:masters`, clientAuth.

use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use der::asn1::{Any, BitString};
use der::pem::{LineEnding, encode_string};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use super::ca::parse_subject;
use super::csr::ParsedCsr;
use super::error::IssueError;
use super::issuer::{IssuedCertificate, Issuer};
use super::key::SubjectKey;
use super::names::SignerName;
use super::oids;
use super::profile::SubjectIdentity;
use super::usage::{Usage, UsageSet};
use super::validate::{Requester, ValidatedCsr};

/// The admin certificate's CN.
pub const ADMIN_COMMON_NAME: &str = "kubesigner-admin";

/// An admin certificate and its private key.
pub struct AdminCertificate {
    /// The certificate (leaf + intermediates).
    pub certificate: IssuedCertificate,
    /// The P-256 private key, PKCS#8 PEM (`PRIVATE KEY`).
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for AdminCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCertificate")
            .field("certificate", &self.certificate.serial)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// Generates a P-256 key in software and issues `CN=kubesigner-admin, O=system:masters`
/// (clientAuth) through the `kube-apiserver-client` profile of `issuer`, for `ttl`.
pub fn admin_client_certificate(
    issuer: &Issuer,
    now: SystemTime,
    ttl: Duration,
) -> Result<AdminCertificate, IssueError> {
    let build = |e: &dyn std::fmt::Display| IssueError::Build(e.to_string());
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| IssueError::Random)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|_| IssueError::Random)?;
    let der = pair
        .private_key()
        .as_der()
        .map_err(|_| IssueError::Random)?;
    let key_pem =
        encode_string("PRIVATE KEY", LineEnding::LF, pkcs8.as_ref()).map_err(|e| build(&e))?;
    drop(der);
    let public_key = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oids::EC_PUBLIC_KEY,
            parameters: Some(Any::from(&oids::SECP256R1)),
        },
        subject_public_key: BitString::from_bytes(pair.public_key().as_ref())
            .map_err(|e| build(&e))?,
    };
    let subject = parse_subject(&format!("CN={ADMIN_COMMON_NAME},O=system:masters"))
        .map_err(|e| build(&e))?;
    let csr = ValidatedCsr {
        signer: SignerName::ApiserverClient,
        csr: ParsedCsr {
            subject: super::subject::Subject::decode(subject),
            public_key,
            key: SubjectKey::EcP256,
            sans: Vec::new(),
            requests_ca: false,
        },
        usages: UsageSet::of(&[Usage::DigitalSignature, Usage::ClientAuth]),
        requested_ttl: Some(ttl),
        identity: SubjectIdentity::Client {
            common_name: ADMIN_COMMON_NAME.to_owned(),
        },
        requester: Requester::default(),
    };
    let certificate = issuer.issue(&csr, now)?;
    Ok(AdminCertificate {
        certificate,
        key_pem: Zeroizing::new(key_pem),
    })
}

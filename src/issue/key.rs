//! The CSR's public key (key rules) and its self-signature (proof of possession), checked with
//! aws-lc-rs.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use pkcs1::{RsaPssParamsOwned, RsaPublicKey};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::error::{Rule, SignerValidationFailure};
use super::oids;

/// Named bound: smallest RSA modulus accepted (design.md; NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// Named bound: largest RSA modulus accepted, so a huge key cannot burn CPU in verification
/// (the same ceiling as aws-lc-rs' `RSA_*_2048_8192_*`).
pub const MAX_RSA_BITS: usize = 8192;

/// The kind of subject public key in a CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKey {
    /// RSA with this modulus size in bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// Ed25519.
    Ed25519,
}

impl SubjectKey {
    /// Classifies a subject public key, refusing what the appliance does not sign for.
    pub fn classify(
        spki: &SubjectPublicKeyInfoOwned,
    ) -> Result<SubjectKey, SignerValidationFailure> {
        let oid = spki.algorithm.oid;
        if oid == oids::RSA_ENCRYPTION {
            let bits = rsa_modulus_bits(spki.subject_public_key.raw_bytes())?;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(SignerValidationFailure::new(
                    Rule::RsaModulusSize,
                    format!("{bits} bits"),
                    format!("{MIN_RSA_BITS} to {MAX_RSA_BITS} bits"),
                ));
            }
            Ok(SubjectKey::Rsa { bits })
        } else if oid == oids::EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(c) if c == oids::SECP256R1 => Ok(SubjectKey::EcP256),
                Some(c) if c == oids::SECP384R1 => Ok(SubjectKey::EcP384),
                other => Err(SignerValidationFailure::new(
                    Rule::KeyCurve,
                    other.map_or_else(|| "no named curve".to_owned(), |c| curve_name(&c)),
                    "P-256, P-384",
                )),
            }
        } else if oid == oids::ED25519 {
            Ok(SubjectKey::Ed25519)
        } else {
            Err(SignerValidationFailure::new(
                Rule::KeyAlgorithm,
                if oid == oids::DSA {
                    "DSA".to_owned()
                } else {
                    oid.to_string()
                },
                "RSA 2048-8192, ECDSA P-256/P-384, Ed25519",
            ))
        }
    }

    /// True for RSA keys (the only keys whose certificates carry keyEncipherment).
    pub fn is_rsa(self) -> bool {
        matches!(self, SubjectKey::Rsa { .. })
    }

    /// A short name for messages.
    pub fn describe(self) -> String {
        match self {
            SubjectKey::Rsa { bits } => format!("RSA {bits}"),
            SubjectKey::EcP256 => "ECDSA P-256".to_owned(),
            SubjectKey::EcP384 => "ECDSA P-384".to_owned(),
            SubjectKey::Ed25519 => "Ed25519".to_owned(),
        }
    }
}

fn curve_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.35" => "P-521".to_owned(),
        "1.3.132.0.10" => "secp256k1".to_owned(),
        s => s.to_owned(),
    }
}

fn rsa_modulus_bits(pkcs1_der: &[u8]) -> Result<usize, SignerValidationFailure> {
    let key = RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(pkcs1_der).map_err(|_| {
        SignerValidationFailure::new(
            Rule::KeyAlgorithm,
            "malformed RSA public key",
            "RSAPublicKey",
        )
    })?;
    let bytes = key.modulus.as_bytes();
    let first = bytes.first().copied().unwrap_or(0);
    Ok((bytes.len() * 8).saturating_sub(first.leading_zeros() as usize))
}

/// Checks the CSR's self-signature (`tbs` = the DER of CertificationRequestInfo) with the
/// subject key. SHA-1 and algorithms that do not match the key are refused.
pub fn verify_proof_of_possession(
    key: SubjectKey,
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    tbs: &[u8],
    signature: &[u8],
) -> Result<(), SignerValidationFailure> {
    let verifier = pick_verifier(key, algorithm)?;
    UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes())
        .verify(tbs, signature)
        .map_err(|_| {
            SignerValidationFailure::new(
                Rule::ProofOfPossession,
                "signature does not verify",
                "a self-signature by the subject key",
            )
        })
}

fn pick_verifier(
    key: SubjectKey,
    alg: &AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, SignerValidationFailure> {
    let oid = alg.oid;
    if oid == oids::SHA1_WITH_RSA || oid == oids::ECDSA_WITH_SHA1 {
        return Err(SignerValidationFailure::new(
            Rule::SignatureAlgorithm,
            "SHA-1",
            "SHA-256, SHA-384, SHA-512, Ed25519",
        ));
    }
    let found: Option<&'static dyn VerificationAlgorithm> = match key {
        SubjectKey::Rsa { .. } => match oid {
            o if o == oids::SHA256_WITH_RSA => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            o if o == oids::SHA384_WITH_RSA => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            o if o == oids::SHA512_WITH_RSA => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            o if o == oids::RSASSA_PSS => return pss_verifier(alg),
            _ => None,
        },
        SubjectKey::EcP256 => match oid {
            o if o == oids::ECDSA_WITH_SHA256 => Some(&sig::ECDSA_P256_SHA256_ASN1),
            o if o == oids::ECDSA_WITH_SHA384 => Some(&sig::ECDSA_P256_SHA384_ASN1),
            o if o == oids::ECDSA_WITH_SHA512 => Some(&sig::ECDSA_P256_SHA512_ASN1),
            _ => None,
        },
        SubjectKey::EcP384 => match oid {
            o if o == oids::ECDSA_WITH_SHA256 => Some(&sig::ECDSA_P384_SHA256_ASN1),
            o if o == oids::ECDSA_WITH_SHA384 => Some(&sig::ECDSA_P384_SHA384_ASN1),
            o if o == oids::ECDSA_WITH_SHA512 => Some(&sig::ECDSA_P384_SHA512_ASN1),
            _ => None,
        },
        SubjectKey::Ed25519 => (oid == oids::ED25519).then_some(&sig::ED25519 as _),
    };
    found.ok_or_else(|| {
        SignerValidationFailure::new(
            Rule::SignatureAlgorithm,
            oid.to_string(),
            format!(
                "a SHA-2 or EdDSA algorithm matching the {} key",
                key.describe()
            ),
        )
    })
}

/// RSASSA-PSS: aws-lc-rs verifies the RFC 8017 common form only (MGF1 with the same hash,
/// salt length = hash length, trailer 1); other parameters are refused.
fn pss_verifier(
    alg: &AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, SignerValidationFailure> {
    let refuse = || {
        SignerValidationFailure::new(
            Rule::SignatureAlgorithm,
            "RSASSA-PSS with unsupported parameters",
            "RSASSA-PSS SHA-256/384/512, MGF1 same hash, salt = hash length",
        )
    };
    let params = alg.parameters.as_ref().ok_or_else(refuse)?;
    let params_der = params.to_der().map_err(|_| refuse())?;
    let params = RsaPssParamsOwned::from_der(&params_der).map_err(|_| refuse())?;
    let mgf_hash = params.mask_gen.parameters.as_ref().map(|h| h.oid);
    if params.mask_gen.oid != oids::MGF1 || mgf_hash != Some(params.hash.oid) {
        return Err(refuse());
    }
    match (params.hash.oid, params.salt_len) {
        (h, 32) if h == oids::SHA256 => Ok(&sig::RSA_PSS_2048_8192_SHA256),
        (h, 48) if h == oids::SHA384 => Ok(&sig::RSA_PSS_2048_8192_SHA384),
        (h, 64) if h == oids::SHA512 => Ok(&sig::RSA_PSS_2048_8192_SHA512),
        (h, _) if h == oids::SHA1 => Err(SignerValidationFailure::new(
            Rule::SignatureAlgorithm,
            "SHA-1",
            "SHA-256, SHA-384, SHA-512, Ed25519",
        )),
        _ => Err(refuse()),
    }
}

//! Key algorithms, the public key read from the token, software hashing, raw ECDSA r‖s → DER,
//! and verification of every signature with aws-lc-rs.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as awssig, ParsedPublicKey};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{BitString, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::signer::key::SignerError;

/// The key algorithms the signer supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048, PKCS#1 v1.5 with SHA-256.
    Rsa2048,
    /// RSA 3072, PKCS#1 v1.5 with SHA-256.
    Rsa3072,
    /// RSA 4096, PKCS#1 v1.5 with SHA-256.
    Rsa4096,
}

impl Algorithm {
    /// The command-line name (`ecdsa-p256`, `rsa-3072`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaP384 => "ecdsa-p384",
            Algorithm::Rsa2048 => "rsa-2048",
            Algorithm::Rsa3072 => "rsa-3072",
            Algorithm::Rsa4096 => "rsa-4096",
        }
    }

    /// The curve OID for ECDSA keys.
    pub fn curve(self) -> Option<ObjectIdentifier> {
        match self {
            Algorithm::EcdsaP256 => Some(rfc5912::SECP_256_R_1),
            Algorithm::EcdsaP384 => Some(rfc5912::SECP_384_R_1),
            _ => None,
        }
    }

    /// The RSA modulus size in bits.
    pub fn rsa_bits(self) -> Option<u64> {
        match self {
            Algorithm::Rsa2048 => Some(2048),
            Algorithm::Rsa3072 => Some(3072),
            Algorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The X.509 signature AlgorithmIdentifier.
    pub fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            Algorithm::EcdsaP256 => alg(rfc5912::ECDSA_WITH_SHA_256, false),
            Algorithm::EcdsaP384 => alg(rfc5912::ECDSA_WITH_SHA_384, false),
            _ => alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION, true),
        }
    }

    /// Software digest for ECDSA (raw `CKM_ECDSA` signs a hash).
    pub(crate) fn ec_digest(self) -> &'static digest::Algorithm {
        match self {
            Algorithm::EcdsaP384 => &digest::SHA384,
            _ => &digest::SHA256,
        }
    }

    /// Length in bytes of one ECDSA scalar (r or s).
    pub(crate) fn ec_scalar_len(self) -> Option<usize> {
        match self {
            Algorithm::EcdsaP256 => Some(32),
            Algorithm::EcdsaP384 => Some(48),
            _ => None,
        }
    }

    fn verification(self) -> &'static dyn awssig::VerificationAlgorithm {
        match self {
            Algorithm::EcdsaP256 => &awssig::ECDSA_P256_SHA256_ASN1,
            Algorithm::EcdsaP384 => &awssig::ECDSA_P384_SHA384_ASN1,
            _ => &awssig::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

fn alg(oid: ObjectIdentifier, null_params: bool) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: null_params.then(|| der::Any::from(der::asn1::Null)),
    }
}

/// The cached public key of the signing key, with a parsed aws-lc-rs verifier.
#[derive(Debug)]
pub struct PublicKey {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The SubjectPublicKeyInfo.
    pub spki: SubjectPublicKeyInfoOwned,
    verifier: ParsedPublicKey,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl PublicKey {
    /// From an EC public-key object: `CKA_EC_PARAMS` (curve OID) and `CKA_EC_POINT`
    /// (a DER OCTET STRING around the point, or the bare point).
    pub fn from_ec(params: &[u8], point: &[u8]) -> Result<PublicKey, SignerError> {
        let curve: ObjectIdentifier = ObjectIdentifier::from_der(params)?;
        let raw = match der::asn1::OctetString::from_der(point) {
            Ok(o) => o.into_bytes().into_vec(),
            Err(_) => point.to_vec(),
        };
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::ID_EC_PUBLIC_KEY,
                parameters: Some(der::Any::from(&curve)),
            },
            subject_public_key: BitString::from_bytes(&raw)?,
        };
        PublicKey::from_spki(spki)
    }

    /// From an RSA public-key object: `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`.
    pub fn from_rsa(modulus: &[u8], exponent: &[u8]) -> Result<PublicKey, SignerError> {
        let key = pkcs1::RsaPublicKey {
            modulus: UintRef::new(modulus)?,
            public_exponent: UintRef::new(exponent)?,
        };
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: alg(rfc5912::RSA_ENCRYPTION, true),
            subject_public_key: BitString::from_bytes(&key.to_der()?)?,
        };
        PublicKey::from_spki(spki)
    }

    /// From a SubjectPublicKeyInfo (e.g. out of a certificate object).
    pub fn from_spki(spki: SubjectPublicKeyInfoOwned) -> Result<PublicKey, SignerError> {
        let bits = spki.subject_public_key.raw_bytes();
        let algorithm = if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or(SignerError::UnsupportedKey {
                    reason: "EC key without a named curve",
                })?;
            match curve {
                c if c == rfc5912::SECP_256_R_1 => Algorithm::EcdsaP256,
                c if c == rfc5912::SECP_384_R_1 => Algorithm::EcdsaP384,
                _ => {
                    return Err(SignerError::UnsupportedKey {
                        reason: "EC curve is not P-256 or P-384",
                    });
                }
            }
        } else if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
            rsa_algorithm(bits)?
        } else {
            return Err(SignerError::UnsupportedKey {
                reason: "key is neither EC nor RSA",
            });
        };
        let verifier = ParsedPublicKey::new(algorithm.verification(), bits).map_err(|_| {
            SignerError::UnsupportedKey {
                reason: "the public key does not parse",
            }
        })?;
        Ok(PublicKey {
            algorithm,
            spki,
            verifier,
        })
    }

    /// Verifies `sig` (the BIT STRING bytes) over `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), SignerError> {
        self.verifier
            .verify_sig(message, sig)
            .map_err(|_| SignerError::BadSignature)
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex (the key fingerprint).
    pub fn fingerprint(&self) -> Result<String, SignerError> {
        let der = self.spki.to_der()?;
        Ok(hex::encode(digest::digest(&digest::SHA256, &der)))
    }
}

fn rsa_algorithm(bits: &[u8]) -> Result<Algorithm, SignerError> {
    let key = pkcs1::RsaPublicKey::<UintRef<'_>>::from_der(bits)?;
    let n = key.modulus.as_bytes().len() * 8;
    match n {
        2048 => Ok(Algorithm::Rsa2048),
        3072 => Ok(Algorithm::Rsa3072),
        4096 => Ok(Algorithm::Rsa4096),
        _ => Err(SignerError::UnsupportedKey {
            reason: "RSA modulus is not 2048, 3072 or 4096 bits",
        }),
    }
}

#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Encodes a raw `r‖s` ECDSA signature as a DER `ECDSA-Sig-Value`.
pub fn ecdsa_der(raw: &[u8], scalar_len: usize) -> Result<Vec<u8>, SignerError> {
    if raw.len() != 2 * scalar_len {
        return Err(SignerError::BadSignature);
    }
    let (r, s) = raw.split_at(scalar_len);
    let sig = EcdsaSig {
        r: UintRef::new(r)?,
        s: UintRef::new(s)?,
    };
    Ok(sig.to_der()?)
}

#[cfg(test)]
mod tests;

//! A software `SignKey` for tests only (aws-lc-rs), standing in for the token until the
//! PKCS#11 signer is merged, and a key source for test CSRs. Never used in shipped code.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey,
};
use der::Decode;
use der::asn1::{Any, BitString};
use kubesigner::signer::{SignKey, SignerError};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

enum Pair {
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A software key implementing `SignKey`.
pub struct SoftKey {
    pair: Pair,
    spki: SubjectPublicKeyInfoOwned,
}

/// Which software key to make.
#[derive(Debug, Clone, Copy)]
pub enum SoftAlg {
    /// ECDSA P-256 / SHA-256.
    P256,
    /// ECDSA P-384 / SHA-384.
    P384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048, PKCS#1 v1.5 SHA-256.
    Rsa2048,
}

impl SoftKey {
    /// Generates a key.
    pub fn generate(alg: SoftAlg) -> SoftKey {
        let rng = SystemRandom::new();
        let (pair, algorithm, bits) = match alg {
            SoftAlg::P256 => {
                let pk8 = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .unwrap();
                let p =
                    EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, pk8.as_ref())
                        .unwrap();
                let bits = p.public_key().as_ref().to_vec();
                (Pair::P256(p), ec_alg(P256), bits)
            }
            SoftAlg::P384 => {
                let pk8 = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                    .unwrap();
                let p =
                    EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, pk8.as_ref())
                        .unwrap();
                let bits = p.public_key().as_ref().to_vec();
                (Pair::P384(p), ec_alg(P384), bits)
            }
            SoftAlg::Ed25519 => {
                let p = Ed25519KeyPair::generate().unwrap();
                let bits = p.public_key().as_ref().to_vec();
                let a = AlgorithmIdentifierOwned {
                    oid: ED25519,
                    parameters: None,
                };
                (Pair::Ed25519(p), a, bits)
            }
            SoftAlg::Rsa2048 => {
                let p = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
                let bits = p.public_key().as_ref().to_vec();
                let a = AlgorithmIdentifierOwned {
                    oid: RSA,
                    parameters: Some(Any::null()),
                };
                (Pair::Rsa(p), a, bits)
            }
        };
        let spki = SubjectPublicKeyInfoOwned {
            algorithm,
            subject_public_key: BitString::from_bytes(&bits).unwrap(),
        };
        SoftKey { pair, spki }
    }
}

fn ec_alg(curve: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: EC_PUBLIC_KEY,
        parameters: Some(Any::from_der(&der::Encode::to_der(&curve).unwrap()).unwrap()),
    }
}

impl SignKey for SoftKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        let (oid, parameters) = match self.pair {
            Pair::P256(_) => (ECDSA_SHA256, None),
            Pair::P384(_) => (ECDSA_SHA384, None),
            Pair::Ed25519(_) => (ED25519, None),
            Pair::Rsa(_) => (SHA256_RSA, Some(Any::null())),
        };
        AlgorithmIdentifierOwned { oid, parameters }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        let rng = SystemRandom::new();
        let (sig, verifier): (Vec<u8>, &dyn sig::VerificationAlgorithm) = match &self.pair {
            Pair::P256(p) => (
                p.sign(&rng, msg).unwrap().as_ref().to_vec(),
                &sig::ECDSA_P256_SHA256_ASN1,
            ),
            Pair::P384(p) => (
                p.sign(&rng, msg).unwrap().as_ref().to_vec(),
                &sig::ECDSA_P384_SHA384_ASN1,
            ),
            Pair::Ed25519(p) => (p.sign(msg).as_ref().to_vec(), &sig::ED25519),
            Pair::Rsa(p) => {
                let mut out = vec![0; p.public_modulus_len()];
                p.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out).unwrap();
                (out, &sig::RSA_PKCS1_2048_8192_SHA256)
            }
        };
        // Like the token signer: verify before returning.
        UnparsedPublicKey::new(verifier, self.spki.subject_public_key.raw_bytes())
            .verify(msg, &sig)
            .map_err(|_| SignerError::BadSignature)?;
        Ok(sig)
    }
}

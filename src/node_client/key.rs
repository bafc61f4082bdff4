//! The node's private key: ECDSA P-256 (the kubelet's default, reference §4.1), held by
//! aws-lc-rs; written as a SEC1 `EC PRIVATE KEY` PEM block like the kubelet's.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use der::pem::LineEnding;
use zeroize::Zeroizing;

/// PEM label of a SEC1 EC private key (what Go's `x509.MarshalECPrivateKey` + kubelet write).
const EC_KEY_LABEL: &str = "EC PRIVATE KEY";
/// PEM label of a PKCS#8 private key (also accepted on load).
const PKCS8_KEY_LABEL: &str = "PRIVATE KEY";

/// Errors with the node key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library could not generate, encode or use the key.
    #[error("ECDSA P-256 key operation failed ({operation})")]
    Crypto {
        /// Which operation.
        operation: &'static str,
    },
    /// The PEM holds no usable P-256 private key.
    #[error("no ECDSA P-256 private key in the PEM data")]
    NoKey,
}

/// An ECDSA P-256 key pair.
pub struct NodeKey {
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(P-256, redacted)")
    }
}

impl NodeKey {
    /// Generates a fresh key.
    pub fn generate() -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).map_err(|_| {
            KeyError::Crypto {
                operation: "generate",
            }
        })?;
        Ok(Self { pair })
    }

    /// Loads the first EC (SEC1) or PKCS#8 private key block from PEM text that may also
    /// hold certificates (the cert dir's `*-current.pem` holds both).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(pem).map_err(|_| KeyError::NoKey)?;
        for block in pem_blocks(text) {
            let Ok((label, der)) = der::pem::decode_vec(block.as_bytes()) else {
                continue;
            };
            let der = Zeroizing::new(der);
            if label == EC_KEY_LABEL || label == PKCS8_KEY_LABEL {
                return EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                    .map(|pair| Self { pair })
                    .map_err(|_| KeyError::NoKey);
            }
        }
        Err(KeyError::NoKey)
    }

    /// The key as a SEC1 `EC PRIVATE KEY` PEM block (zeroized on drop).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self
            .pair
            .private_key()
            .as_der()
            .map_err(|_| KeyError::Crypto {
                operation: "encode",
            })?;
        der::pem::encode_string(EC_KEY_LABEL, LineEnding::LF, der.as_ref())
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Crypto {
                operation: "encode",
            })
    }

    /// The public key as DER `SubjectPublicKeyInfo` (what Go's `MarshalPKIXPublicKey` gives).
    pub fn spki_der(&self) -> Result<Vec<u8>, KeyError> {
        self.pair
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| KeyError::Crypto {
                operation: "encode public key",
            })
    }

    /// The uncompressed public point (65 bytes).
    pub fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// Signs `message` with ECDSA-with-SHA256; DER-encoded signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.pair
            .sign(&rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| KeyError::Crypto { operation: "sign" })
    }
}

/// Splits PEM text into its `-----BEGIN …-----` … `-----END …-----` blocks.
pub(crate) fn pem_blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find("-----BEGIN ")?;
        let after = rest.get(start..)?;
        let end_marker = after.find("-----END ")?;
        let tail = after.get(end_marker + 9..)?;
        let close = tail.find("-----")?;
        let len = end_marker + 9 + close + 5;
        let block = after.get(..len)?;
        rest = after.get(len..).unwrap_or("");
        Some(block)
    })
}

#[cfg(test)]
mod tests;

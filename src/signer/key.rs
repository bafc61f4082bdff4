//! The narrow interface the rest of the appliance sees: a public key and a `sign` that
//! returns a signature already verified against that public key.

use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// Errors from the signer. (Extended by the PKCS#11 implementation.)
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The token returned a signature that does not verify with the CA public key.
    #[error("the token returned a signature that does not verify with the CA public key")]
    BadSignature,
}

/// A CA key that signs certificates. Implemented by the PKCS#11 token signer.
pub trait SignKey: Send + Sync {
    /// The key's SubjectPublicKeyInfo (cached; no token call).
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// The signature AlgorithmIdentifier this key signs with (e.g. ecdsa-with-SHA256).
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// Signs `message` (blocking: call from a blocking thread). Returns the bytes that go into
    /// the certificate's signature BIT STRING (a DER `ECDSA-Sig-Value` for ECDSA), already
    /// verified against [`SignKey::public_key`].
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

//! Adapter so the `x509-cert` builders (`CertificateBuilder`, `RequestBuilder`) sign straight
//! on a [`SignKey`]: a [`Keypair`] whose verifying key encodes the token key's SPKI, a
//! [`Signer`] producing [`KeySignature`] (the bytes the token returned, already verified by the
//! signer), and a [`DynSignatureAlgorithmIdentifier`] taken from the key.

use der::asn1::BitString;
use der::{Document, Encode};
use signature::{Keypair, Signer};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};

use super::SignKey;

/// A borrowed [`SignKey`] usable as an `x509-cert` builder signer:
/// `builder.build::<_, KeySignature>(&KeyRef(key))`.
#[derive(Clone, Copy)]
pub struct KeyRef<'a>(pub &'a dyn SignKey);

impl std::fmt::Debug for KeyRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRef").finish_non_exhaustive()
    }
}

/// The public half of a [`SignKey`], as the builder needs it (encodes to the key's SPKI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpki(pub SubjectPublicKeyInfoOwned);

impl EncodePublicKey for KeySpki {
    fn to_public_key_der(&self) -> spki::Result<Document> {
        Ok(Document::try_from(self.0.to_der()?)?)
    }
}

/// A signature returned by [`SignKey::sign`]: the exact bytes of the signature BIT STRING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySignature(pub Vec<u8>);

impl SignatureBitStringEncoding for KeySignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl Keypair for KeyRef<'_> {
    type VerifyingKey = KeySpki;

    fn verifying_key(&self) -> KeySpki {
        KeySpki(self.0.public_key().clone())
    }
}

impl Signer<KeySignature> for KeyRef<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<KeySignature, signature::Error> {
        self.0
            .sign(msg)
            .map(KeySignature)
            .map_err(signature::Error::from_source)
    }
}

impl DynSignatureAlgorithmIdentifier for KeyRef<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.0.signature_algorithm())
    }
}

//! The narrow interface the rest of the appliance sees: a public key and a `sign` that
//! returns a signature already verified against that public key.

use std::path::PathBuf;
use std::time::Duration;

use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::exit;
use crate::signer::ckr::ErrorClass;
use crate::signer::env::EnvError;
use crate::signer::pin::PinError;
use crate::signer::uri::UriError;

/// Errors from the signer.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The token returned a signature that does not verify with the CA public key.
    #[error("the token returned a signature that does not verify with the CA public key")]
    BadSignature,
    /// The `pkcs11:` URI is invalid.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The PIN could not be loaded.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The module environment could not be applied.
    #[error(transparent)]
    Environment(#[from] EnvError),
    /// The PKCS#11 module could not be loaded.
    #[error("cannot load PKCS#11 module {path}: {detail}")]
    ModuleLoad {
        /// The module path.
        path: PathBuf,
        /// The loader's message.
        detail: String,
    },
    /// A PKCS#11 call returned an error code.
    #[error("{function} failed: {code}")]
    Pkcs11 {
        /// The PKCS#11 function, e.g. `C_Login`.
        function: String,
        /// The return code, e.g. `CKR_PIN_INCORRECT`.
        code: String,
        /// How the signer reacts to this code.
        class: ErrorClass,
    },
    /// The cryptoki layer failed outside a PKCS#11 return code (null function, conversion).
    #[error("PKCS#11 library error: {detail}")]
    Library {
        /// What went wrong.
        detail: String,
    },
    /// No token matches the URI's token selector.
    #[error("no token matches {selector}")]
    TokenNotFound {
        /// The selector, e.g. `token=ca`.
        selector: String,
    },
    /// More than one token matches the URI's token selector.
    #[error("{count} tokens match {selector}; select one by serial or slot-id")]
    AmbiguousToken {
        /// The selector.
        selector: String,
        /// How many matched.
        count: usize,
    },
    /// No private key matches the URI's key selector.
    #[error("no private key matches {selector}")]
    KeyNotFound {
        /// The selector, e.g. `id=%01;object=ca`.
        selector: String,
    },
    /// More than one private key matches: refused rather than picking one.
    #[error(
        "{count} private keys match {selector}; refusing an ambiguous key (give id and object)"
    )]
    AmbiguousKey {
        /// The selector.
        selector: String,
        /// How many matched.
        count: usize,
    },
    /// Neither a public-key object nor a certificate for the key was found.
    #[error("no public key or certificate object found for the key {selector}")]
    PublicKeyNotFound {
        /// The selector.
        selector: String,
    },
    /// The key's type or size is not one the signer supports.
    #[error("unsupported key: {reason}")]
    UnsupportedKey {
        /// Why.
        reason: &'static str,
    },
    /// The public key changed between the first open and a re-initialisation.
    #[error("the key in the token changed since start-up; refusing to sign with it")]
    KeyChanged,
    /// Key generation found an existing object with the same id or label.
    #[error("an object with {what} already exists in the token; refusing to overwrite it")]
    KeyExists {
        /// `id=...` or `object=...`.
        what: String,
    },
    /// The token cannot make or use a key of this algorithm (from its mechanism information).
    #[error("the token cannot make an {algorithm} signing key: {detail}")]
    TokenLacks {
        /// The algorithm asked for, e.g. `ecdsa-p256`.
        algorithm: &'static str,
        /// What the mechanism information says.
        detail: String,
    },
    /// A key the token generated is not protected as asked (read back after generation);
    /// it was destroyed again.
    #[error(
        "the token made a key with {attribute}={found} instead of {expected}; the key was destroyed",
        found = found.map_or("absent".to_owned(), |v| v.to_string())
    )]
    KeyNotProtected {
        /// The attribute, e.g. `CKA_EXTRACTABLE`.
        attribute: &'static str,
        /// The value it must have.
        expected: bool,
        /// The value the token reported (`None`: not reported).
        found: Option<bool>,
    },
    /// `init_token` found no uninitialised slot.
    #[error("no free (uninitialised) slot in the PKCS#11 module")]
    NoFreeSlot,
    /// The module is already initialised by another user in this process.
    #[error("the PKCS#11 module is already initialised in this process")]
    ModuleBusy,
    /// The signer is down (token unreachable or login refused); signing fails fast.
    #[error("signer unavailable: {reason}")]
    Unavailable {
        /// Why the signer is down.
        reason: String,
    },
    /// No session became free in time.
    #[error("no PKCS#11 session became free within {waited:?}")]
    PoolTimeout {
        /// How long the caller waited.
        waited: Duration,
    },
    /// A DER structure could not be encoded or decoded.
    #[error("DER encoding: {0}")]
    Der(#[from] der::Error),
    /// The blocking signing task was cancelled or panicked.
    #[error("the signing task did not complete")]
    TaskFailed,
}

impl SignerError {
    /// The process exit code for this error at start-up: 64 for configuration and PIN
    /// problems (never worth a restart), 69 for an unavailable token, 70 for internal errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            SignerError::Uri(_)
            | SignerError::Pin(_)
            | SignerError::Environment(_)
            | SignerError::ModuleLoad { .. }
            | SignerError::TokenNotFound { .. }
            | SignerError::AmbiguousToken { .. }
            | SignerError::KeyNotFound { .. }
            | SignerError::AmbiguousKey { .. }
            | SignerError::PublicKeyNotFound { .. }
            | SignerError::UnsupportedKey { .. }
            | SignerError::KeyChanged
            | SignerError::KeyExists { .. }
            | SignerError::TokenLacks { .. }
            | SignerError::KeyNotProtected { .. }
            | SignerError::NoFreeSlot => exit::USAGE,
            SignerError::Pkcs11 { class, .. } if *class == ErrorClass::Pin => exit::USAGE,
            SignerError::Pkcs11 { .. }
            | SignerError::Unavailable { .. }
            | SignerError::PoolTimeout { .. } => exit::UNAVAILABLE,
            SignerError::BadSignature
            | SignerError::Library { .. }
            | SignerError::ModuleBusy
            | SignerError::Der(_)
            | SignerError::TaskFailed => exit::SOFTWARE,
        }
    }

    /// The error class of a PKCS#11 return code, if this error carries one.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            SignerError::Pkcs11 { class, .. } => Some(*class),
            _ => None,
        }
    }
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

//! The CA key in a PKCS#11 token. This is the only module that imports `cryptoki`.

mod key;
mod x509;

pub use key::{SignKey, SignerError};
pub use x509::{KeyRef, KeySignature, KeySpki};

//! The CA key in a PKCS#11 token. This is the only module that imports `cryptoki`.

mod key;

pub use key::{SignKey, SignerError};

//! PKCS#11 return codes: names (`CKR_PIN_INCORRECT`) and what the signer does about each.

use cryptoki::context::Function;
use cryptoki::error::{Error, RvError};

use crate::signer::key::SignerError;

/// How the signer reacts to a PKCS#11 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The session (or an object handle in it) is dead: evict the session, open a new one.
    Session,
    /// The device or the library is in trouble: mark the signer down, re-initialise.
    Device,
    /// The PIN was refused or is locked: never retried.
    Pin,
    /// The request itself was refused (bad data, ...): the session stays usable.
    Request,
}

/// Classifies a return code.
pub fn classify(rv: RvError) -> ErrorClass {
    use RvError as R;
    match rv {
        R::SessionHandleInvalid
        | R::SessionClosed
        | R::ObjectHandleInvalid
        | R::KeyHandleInvalid
        | R::OperationActive
        | R::OperationNotInitialized => ErrorClass::Session,
        R::DeviceError
        | R::DeviceRemoved
        | R::DeviceMemory
        | R::TokenNotPresent
        | R::TokenNotRecognized
        | R::CryptokiNotInitialized
        | R::GeneralError
        | R::UserNotLoggedIn
        | R::SlotIdInvalid
        | R::SessionCount => ErrorClass::Device,
        R::PinIncorrect | R::PinLocked | R::PinExpired | R::PinInvalid | R::PinLenRange => {
            ErrorClass::Pin
        }
        _ => ErrorClass::Request,
    }
}

/// `CKR_...` name of a return code (`PinIncorrect` → `CKR_PIN_INCORRECT`).
pub fn ckr_name(rv: RvError) -> String {
    let debug = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        }
    }
    out
}

/// `C_...` name of a PKCS#11 function (`Function::Login` → `C_Login`).
pub fn function_name(function: Function) -> String {
    format!("C_{function:?}")
}

/// Converts a cryptoki error into a [`SignerError`] carrying the function and code.
pub fn to_signer_error(e: Error) -> SignerError {
    match e {
        Error::Pkcs11(rv, function) => SignerError::Pkcs11 {
            function: function_name(function),
            code: ckr_name(rv),
            class: classify(rv),
        },
        other => SignerError::Library {
            detail: other.to_string(),
        },
    }
}

/// The return code of a cryptoki error, if it is one.
pub fn rv_of(e: &Error) -> Option<RvError> {
    match e {
        Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

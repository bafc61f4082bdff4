//! The CA key in a PKCS#11 token. This is the only module that imports `cryptoki`.
//!
//! Open a [`TokenSigner`] from a [`Pkcs11Uri`]; it implements [`SignKey`]. Signing blocks:
//! from async code call [`TokenSigner::sign_async`] (it uses `spawn_blocking`).
//!
//! Start-up: `apply_module_environment` (from `main`, before threads) → `Pkcs11Uri::parse`
//! (`UriOrigin::ConfigFile` or `CommandLine`) → `TokenSigner::open(&uri, Settings::from(&cfg))`;
//! on error exit with `SignerError::exit_code()` (64 = configuration or PIN, 69 = token
//! unavailable). Readiness: `TokenSigner::ready()`; details: `TokenSigner::status()`.
//! Tooling: `keygen` (explicit sign-only template) and `init_token` (dev mode's token).

pub mod ckr;
mod env;
mod key;
mod keygen;
mod module;
mod pin;
mod pool;
mod pubkey;
mod template;
mod token;
mod uri;
mod x509;

pub use ckr::ErrorClass;
pub use env::{EnvError, REEXEC_MARKER, apply_module_environment, parse_env_args};
pub use key::{SignKey, SignerError};
pub use keygen::{GeneratedKey, init_token, keygen};
pub use module::login_calls;
pub use pin::{DEFAULT_CREDENTIAL, Pin, PinError};
pub use pubkey::{Algorithm, PublicKey, ecdsa_der};
pub use token::{Settings, SignerStatus, TokenSigner};
pub use uri::{Pkcs11Uri, TokenSelector, UriError, UriOrigin};
pub use x509::{KeyRef, KeySignature, KeySpki};

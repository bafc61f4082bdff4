//! Why one part of a reload kept its previous version.

use crate::authn::AuthnError;
use crate::policy::{GroupPatternError, InventoryError};
use crate::tls::TlsError;

/// Why a part did not reload (the previous version stays in force).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The static token file does not load.
    #[error(transparent)]
    Tokens(#[from] AuthnError),
    /// A client CA bundle does not load, or the verifier cannot be built.
    #[error(transparent)]
    ClientCa(#[from] TlsError),
    /// The node inventory file does not load.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The approval policy cannot be built over the new inventory.
    #[error(transparent)]
    Policy(#[from] GroupPatternError),
}

/// Why the configuration could not be read again (from the caller's loader).
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

//! The narrow interface the API calls for authentication (`authn`). Validation, approval and
//! signing are the shared core's (`crate::core::Core`); authorization is `authz`'s pure
//! functions, called directly.

use rustls_pki_types::CertificateDer;

pub use crate::authn::AuthnOutcome as AuthnResult;
/// The authenticated caller (`authn::Identity`).
pub use crate::authn::Identity as Caller;
pub use crate::authz::{CsrFacts, Verb};

/// Authentication: implemented by `authn::Authenticator`; tests may plug in a fixed caller.
pub trait Authenticate: Send + Sync + 'static {
    /// Authenticates from the verified client chain and the `Authorization` header.
    fn authenticate(
        &self,
        client_chain: Option<&[CertificateDer<'static>]>,
        authorization: Option<&[u8]>,
    ) -> AuthnResult;
}

impl Authenticate for crate::authn::Authenticator {
    fn authenticate(
        &self,
        client_chain: Option<&[CertificateDer<'static>]>,
        authorization: Option<&[u8]>,
    ) -> AuthnResult {
        crate::authn::Authenticator::authenticate(
            self,
            client_chain,
            authorization,
            std::time::SystemTime::now(),
        )
    }
}

//! Whether the node's current client certificate can still be used, and if not, why: the
//! kubelet falls back to its bootstrap credentials when its certificate has expired (reference
//! §4.4: "the clientset uses the current cert if it is valid, otherwise the bootstrap
//! credentials"). Here "valid" is: a certificate and key that belong together, inside
//! NotBefore..NotAfter, and — when the bootstrap kubeconfig's CA bundle holds its issuer — a
//! chain to that CA for client authentication.
//!
//! An issuer that is not in the bundle cannot be checked on the node (the appliance may serve
//! TLS with an operator certificate from another CA): the certificate is then used, and the
//! appliance decides.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use super::certdir::StoredPair;

/// Why the current client certificate is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// No complete pair (certificate and its key) is in the cert dir.
    #[error("no client certificate with its key in the cert dir")]
    Missing,
    /// Past NotAfter.
    #[error("the client certificate expired at {not_after}")]
    Expired {
        /// NotAfter, RFC 3339.
        not_after: String,
    },
    /// Before NotBefore (clock skew, or a certificate from the future).
    #[error("the client certificate is not valid before {not_before}")]
    NotYetValid {
        /// NotBefore, RFC 3339.
        not_before: String,
    },
    /// Its issuer is in the CA bundle but the chain does not verify (the CA was replaced).
    #[error("the client certificate does not chain to the bootstrap CA ({reason})")]
    NotChaining {
        /// The verifier's reason.
        reason: String,
    },
}

fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t).map_or_else(|_| "?".to_owned(), |t| t.to_string())
}

/// Checks `pair` (from [`super::certdir::CertStore::load_current`]) at `now` against the CA
/// bundle `ca_pem`.
pub fn check_client(
    pair: Option<&StoredPair>,
    ca_pem: &[u8],
    now: SystemTime,
) -> Result<(), Unusable> {
    let pair = pair.ok_or(Unusable::Missing)?;
    let (not_before, not_after) = pair.validity();
    if now >= not_after {
        return Err(Unusable::Expired {
            not_after: rfc3339(not_after),
        });
    }
    if now < not_before {
        return Err(Unusable::NotYetValid {
            not_before: rfc3339(not_before),
        });
    }
    chains(pair, ca_pem, now)
}

fn chains(pair: &StoredPair, ca_pem: &[u8], now: SystemTime) -> Result<(), Unusable> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem).flatten() {
        // A bundle entry webpki cannot use is skipped, as a TLS client would.
        let _ = roots.add(c);
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
            .flatten()
            .collect();
    let (Some(leaf), false) = (chain.first(), roots.is_empty()) else {
        return Ok(());
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let Ok(verifier) =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()
    else {
        return Ok(());
    };
    let at = UnixTime::since_unix_epoch(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    match verifier.verify_client_cert(leaf, chain.get(1..).unwrap_or_default(), at) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            tracing::debug!(
                "the client certificate's issuer is not in the bootstrap CA bundle; not checked"
            );
            Ok(())
        }
        Err(e) => Err(Unusable::NotChaining {
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;

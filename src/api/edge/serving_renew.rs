//! The generated serving certificate renews itself from the CA before [`RENEW_BEFORE`]
//! remains, and the listener picks the new one up at the next handshake (a rustls certificate
//! resolver over a swappable key): no restart, no dropped connection.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::serving::{ServingIdentity, serving_identity};
use crate::issue::Issuer;
use crate::tls::{TlsError, crypto_provider};

/// Renew when less than this remains: testssl rates a certificate with under 60 days left as
/// MEDIUM, so renewal starts well before.
pub const RENEW_BEFORE: Duration = Duration::from_secs(60 * 86_400);

/// Longest sleep between checks (a clock jump or suspend is noticed within this).
const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// Wait after a failed renewal (the token may be down) before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The current serving certificate and key, swapped on renewal.
#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

fn certified(id: ServingIdentity) -> Result<Arc<CertifiedKey>, TlsError> {
    let provider = crypto_provider();
    let key = provider.key_provider.load_private_key(id.key)?;
    Ok(Arc::new(CertifiedKey::new(id.chain, key)))
}

impl ServingCert {
    /// Starts with `id`.
    pub fn new(id: ServingIdentity) -> Result<Arc<ServingCert>, TlsError> {
        Ok(Arc::new(ServingCert {
            current: RwLock::new(certified(id)?),
        }))
    }

    /// Replaces the certificate (new handshakes use it at once).
    pub fn replace(&self, id: ServingIdentity) -> Result<(), TlsError> {
        let next = certified(id)?;
        if let Ok(mut cur) = self.current.write() {
            *cur = next;
        }
        Ok(())
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

/// When to renew a certificate that expires at `not_after` and lives `ttl`: [`RENEW_BEFORE`]
/// ahead, or at half its life if it is shorter than twice that.
pub fn renew_at(not_after: SystemTime, ttl: Duration) -> SystemTime {
    let ahead = RENEW_BEFORE.min(ttl / 2);
    not_after.checked_sub(ahead).unwrap_or(not_after)
}

/// What the renewal task needs to issue a new serving certificate.
#[derive(Debug)]
pub struct Renewal {
    /// An issuer over the same CA key(s).
    pub issuer: Issuer,
    /// The listen address (an IP SAN).
    pub listen: SocketAddr,
    /// Extra DNS / IP names.
    pub names: Vec<String>,
    /// Requested lifetime.
    pub ttl: Duration,
    /// The store whose audit chain records every renewal's signature.
    pub store: crate::store::Store,
}

/// Renews `cert` forever (the task is aborted at shutdown).
pub async fn renew_loop(cert: Arc<ServingCert>, mut not_after: SystemTime, r: Renewal) {
    loop {
        let due = renew_at(not_after, r.ttl);
        let wait = due
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(CHECK_EVERY)).await;
            continue;
        }
        match serving_identity(&r.issuer, r.listen, &r.names, r.ttl) {
            Ok(id) => {
                // The signature is recorded before the certificate is used (M-HARD-3).
                if let Err(e) = record_serving(&r.store, &id).await {
                    tracing::warn!(error = %e, "serving certificate not recorded; retrying");
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
                let next = id.not_after;
                match cert.replace(id) {
                    Ok(()) => {
                        not_after = next;
                        crate::metrics::global()
                            .serving_not_after
                            .set(crate::clock::unix_secs(next));
                        tracing::info!("serving certificate renewed");
                    }
                    Err(e) => tracing::warn!(error = %e, "renewed serving key unusable"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "serving certificate renewal failed; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Appends the audit record of a serving certificate's signature (blocking thread).
pub async fn record_serving(
    store: &crate::store::Store,
    id: &ServingIdentity,
) -> Result<(), crate::audit::signature::SignatureAuditError> {
    let Some(leaf) = id.chain.first().map(|c| c.as_ref().to_vec()) else {
        return Err(crate::audit::signature::SignatureAuditError::Certificate(
            "empty chain".to_owned(),
        ));
    };
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        crate::audit::signature::record(
            &store,
            crate::audit::Kind::ServingCertificate,
            "kubesigner",
            super::serving::SERVING_COMMON_NAME,
            &leaf,
        )
    })
    .await
    .map_err(|e| crate::audit::signature::SignatureAuditError::Certificate(e.to_string()))?
    .map(|_| ())
}

#[cfg(test)]
mod tests;

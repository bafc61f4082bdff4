//! The node after bootstrap: renews its client certificate with that certificate (the
//! rotation path, `csr-` names) and keeps its serving certificate, and falls back to the
//! bootstrap kubeconfig when the client certificate can no longer be used (reference §4.4).

use std::time::{Duration, SystemTime};

use super::certdir::{CertDirError, CertStore, StoredPair};
use super::client::{ApiClient, Credential};
use super::csr::CertKind;
use super::key::NodeKey;
use super::request::{Naming, request_certificate};
use super::rotation::retry_delay;
use super::run::{BootstrapConfig, BootstrapError, ROTATION_ATTEMPT_TIMEOUT, bootstrap_client};
use super::usable::{Unusable, check_client};
use crate::kubeconfig::ClientConfig;

/// The node after bootstrap: talks to the signer with its own client certificate.
pub(super) struct NodeSide<'a> {
    cfg: &'a BootstrapConfig,
    boot: ClientConfig,
    ca_pem: Vec<u8>,
    client_store: CertStore,
}

impl<'a> NodeSide<'a> {
    /// The node side for `cfg`, with the bootstrap kubeconfig (kept for the fallback), its CA
    /// and the client certificate store.
    pub(super) fn new(
        cfg: &'a BootstrapConfig,
        boot: ClientConfig,
        ca_pem: Vec<u8>,
        client_store: CertStore,
    ) -> Self {
        Self {
            cfg,
            boot,
            ca_pem,
            client_store,
        }
    }

    /// Rotates the client certificate, and the serving certificate when `serving` is set,
    /// until an error ends the command.
    pub(super) async fn rotate(&self, serving: Option<&CertKind>) -> Result<(), BootstrapError> {
        match serving {
            Some(kind) => {
                let store = CertStore::new(&self.cfg.cert_dir, kind.file_prefix());
                tokio::try_join!(
                    self.rotate_forever(&CertKind::Client, &self.client_store),
                    self.rotate_forever(kind, &store)
                )?;
            }
            None => {
                self.rotate_forever(&CertKind::Client, &self.client_store)
                    .await?
            }
        }
        Ok(())
    }

    /// A client authenticated with the current client certificate, if it is usable.
    fn node_client(&self) -> Result<ApiClient, BootstrapError> {
        let pair = self.client_store.load_current();
        check_client(pair.as_ref(), &self.ca_pem, SystemTime::now())?;
        let pair = pair.ok_or(Unusable::Missing)?;
        Ok(ApiClient::new(
            &self.boot.server,
            &self.ca_pem,
            self.boot.tls_server_name.as_deref(),
            Credential::Certificate {
                cert_pem: pair.cert_pem.into_bytes(),
                key_pem: zeroize::Zeroizing::new(
                    pair.key
                        .to_pem()
                        .map_err(CertDirError::from)?
                        .as_bytes()
                        .to_vec(),
                ),
            },
        )?
        .with_protobuf())
    }

    /// One renewal: fresh key, `csr-` generateName, node credential.
    async fn renew(
        &self,
        kind: &CertKind,
        store: &CertStore,
        timeout: Duration,
    ) -> Result<(), BootstrapError> {
        let client = self.node_client()?;
        let key = NodeKey::generate().map_err(CertDirError::from)?;
        let cert = request_certificate(
            &client,
            &key,
            &self.cfg.node,
            kind,
            Naming::Generate,
            timeout,
        )
        .await?;
        let path = store.update(&cert, &key, SystemTime::now())?;
        tracing::info!(file = %path.display(), signer = kind.signer_name(), "certificate renewed");
        Ok(())
    }

    /// Gets a serving certificate unless a valid one is in place.
    pub(super) async fn ensure_serving(&self, kind: &CertKind) -> Result<(), BootstrapError> {
        let store = CertStore::new(&self.cfg.cert_dir, kind.file_prefix());
        if store
            .load_current()
            .is_some_and(|p| p.valid_at(SystemTime::now()))
        {
            return Ok(());
        }
        if self.cfg.once {
            return self.renew(kind, &store, self.cfg.wait_timeout).await;
        }
        self.renew_with_retries(kind, &store).await
    }

    /// Renews until it works. An unusable client certificate ends the client's attempts (the
    /// caller falls back to bootstrap); the serving side waits for the client side to recover.
    async fn renew_with_retries(
        &self,
        kind: &CertKind,
        store: &CertStore,
    ) -> Result<(), BootstrapError> {
        let mut attempt = 0u32;
        loop {
            match self.renew(kind, store, ROTATION_ATTEMPT_TIMEOUT).await {
                Ok(()) => return Ok(()),
                Err(BootstrapError::Unusable(why)) if *kind == CertKind::Client => {
                    return Err(BootstrapError::Unusable(why));
                }
                Err(e) => {
                    let pause = retry_delay(attempt);
                    tracing::warn!(error = %e, retry_in = ?pause, signer = kind.signer_name(), "renewal attempt failed");
                    tokio::time::sleep(pause).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// The fallback: bootstrap again with the bootstrap kubeconfig, as the kubelet does when
    /// its client certificate is no longer usable.
    async fn bootstrap_again(&self, why: &Unusable) -> Result<(), BootstrapError> {
        tracing::warn!(reason = %why, "client certificate unusable; falling back to the bootstrap kubeconfig");
        bootstrap_client(self.cfg, &self.boot, &self.ca_pem, &self.client_store).await
    }

    /// Sleeps until the renewal point of the current pair, renews, repeats.
    async fn rotate_forever(
        &self,
        kind: &CertKind,
        store: &CertStore,
    ) -> Result<(), BootstrapError> {
        loop {
            let pair: Option<StoredPair> = store.load_current();
            let wait = match &pair {
                Some(p) => self.cfg.renew.delay(p.validity(), SystemTime::now()),
                None => Duration::ZERO,
            };
            tracing::info!(
                signer = kind.signer_name(),
                renew_in_s = wait.as_secs(),
                "next renewal scheduled"
            );
            tokio::time::sleep(wait).await;
            match self.renew_with_retries(kind, store).await {
                Err(BootstrapError::Unusable(why)) => self.bootstrap_again(&why).await?,
                other => other?,
            }
        }
    }
}

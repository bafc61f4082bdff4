//! Signing of stored, approved CSRs (approved by an administrator, or left unsigned while the
//! signer was down; new CSRs are decided and signed before they are stored: `create_flow`):
//! signed on a blocking thread, they get `status.certificate` (recorded as issued for the node
//! in the same transaction). While the signer is not ready, approved CSRs stay approved
//! without a certificate and the backlog task signs them when it is ready again.

use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use tokio::task::JoinHandle;

use crate::api::error::ApiError;
use crate::api::{Api, BACKLOG_INTERVAL, blocking};
use crate::conditions::{
    ConditionType, SIGNER_VALIDATION_FAILURE, add_condition, condition, has_condition, is_decided,
    needs_signing,
};
use crate::core::SignFailure;
use crate::store::UpdateError;

/// How often a request waiting for a signature checks that the signer is still up (a hung
/// token is detected by the signer's readiness after its sign timeout).
const READY_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// The actor name the appliance writes under.
const APPLIANCE: &str = "kubesigner";

/// A closure refused to change an object that another writer already moved on: nothing to do.
#[derive(Debug)]
struct Skip;

impl Api {
    /// Adds an appliance condition (unless Approved/Denied/Failed is already there).
    async fn add_terminal(
        &self,
        name: &str,
        kind: crate::audit::Kind,
        type_: ConditionType,
        reason: String,
        message: String,
    ) -> Result<Option<CertificateSigningRequest>, ApiError> {
        let store = self.inner.store.clone();
        let n = name.to_owned();
        let at = super::now();
        let r = blocking(move || {
            store.update(&n, None, APPLIANCE, kind, |c| {
                if is_decided(c) && type_ != ConditionType::Failed || has_condition(c, type_) {
                    return Err(Skip);
                }
                add_condition(c, condition(type_, &reason, &message, &at));
                Ok(None)
            })
        })
        .await?;
        match r {
            Ok(c) => Ok(Some(c)),
            Err(UpdateError::Rejected(Skip)) => Ok(None),
            Err(UpdateError::Store(e)) => Err(e.into()),
        }
    }

    /// Signs one approved CSR now if the signer is ready. `Ok(None)` when nothing was written
    /// (signer down, already signed, or another task is signing it).
    pub(in crate::api) async fn sign_now(
        &self,
        name: &str,
    ) -> Result<Option<CertificateSigningRequest>, ApiError> {
        if self.inner.external {
            return Ok(None);
        }
        if !self.inner.core.ready() {
            self.inner.wake_signer.notify_one();
            return Ok(None);
        }
        {
            let mut set = self
                .inner
                .signing
                .lock()
                .map_err(|_| ApiError::Internal("signing set poisoned".to_owned()))?;
            if !set.insert(name.to_owned()) {
                return Ok(None);
            }
        }
        let r = self.sign_locked(name).await;
        if let Ok(mut set) = self.inner.signing.lock() {
            set.remove(name);
        }
        r
    }

    /// Completes when the signer stops being ready (polled every [`READY_POLL`]).
    pub(in crate::api) async fn until_not_ready(&self) {
        while self.inner.core.ready() {
            tokio::time::sleep(READY_POLL).await;
        }
    }

    async fn sign_locked(&self, name: &str) -> Result<Option<CertificateSigningRequest>, ApiError> {
        let store = self.inner.store.clone();
        let n = name.to_owned();
        let Some(csr) = blocking(move || store.get(&n)).await?? else {
            return Ok(None);
        };
        if !needs_signing(&csr) {
            return Ok(None);
        }
        let core = self.inner.core.clone();
        let sign = blocking(move || sign_stored(&core, &csr));
        // A hung token never returns the call: stop waiting once the signer is marked down
        // (it is, after `[signer] sign_timeout`); the CSR stays approved for the backlog.
        let signed = tokio::select! {
            r = sign => r?,
            () = self.until_not_ready() => Err(SignFailure::Unavailable),
        };
        match signed {
            Ok(issued) => {
                let store = self.inner.store.clone();
                let n = name.to_owned();
                let r = blocking(move || {
                    store.update(&n, None, APPLIANCE, crate::audit::Kind::Issue, |c| {
                        if !needs_signing(c) {
                            return Err(Skip);
                        }
                        c.status.get_or_insert_with(Default::default).certificate =
                            Some(ByteString(issued.certificate.pem_chain.into_bytes()));
                        Ok(issued.record)
                    })
                })
                .await?;
                match r {
                    Ok(c) => {
                        tracing::info!(csr = %name, "certificate issued");
                        Ok(Some(c))
                    }
                    Err(UpdateError::Rejected(Skip)) => Ok(None),
                    Err(UpdateError::Store(e)) => Err(e.into()),
                }
            }
            Err(SignFailure::Unavailable) => {
                tracing::warn!(csr = %name, "signer unavailable; csr stays approved until it recovers");
                Ok(None)
            }
            Err(SignFailure::Refused { message }) => {
                tracing::info!(csr = %name, %message, "signer refused csr");
                self.add_terminal(
                    name,
                    crate::audit::Kind::Fail,
                    ConditionType::Failed,
                    SIGNER_VALIDATION_FAILURE.to_owned(),
                    message,
                )
                .await
            }
        }
    }

    /// Signs every approved CSR without a certificate (at start-up and whenever the signer is
    /// ready again).
    pub async fn sign_backlog(&self) -> Result<usize, ApiError> {
        if self.inner.external || !self.inner.core.ready() {
            return Ok(0);
        }
        let store = self.inner.store.clone();
        let backlog = blocking(move || store.approved_unsigned()).await??;
        let mut done = 0;
        for csr in backlog.iter().filter(|c| needs_signing(c)) {
            let name = csr.metadata.name.clone().unwrap_or_default();
            match self.sign_now(&name).await {
                Ok(Some(_)) => done += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(csr = %name, error = %e, "backlog signing failed"),
            }
        }
        Ok(done)
    }

    /// Starts the backlog task: runs at once, then every [`BACKLOG_INTERVAL`] or when woken.
    pub fn spawn_backlog(&self) -> JoinHandle<()> {
        let api = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = api.sign_backlog().await {
                    tracing::warn!(error = %e, "signer backlog scan failed");
                }
                let inner = Arc::clone(&api.inner);
                tokio::select! {
                    () = inner.wake_signer.notified() => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                    () = tokio::time::sleep(BACKLOG_INTERVAL) => {}
                }
            }
        })
    }
}

/// Signs a stored, approved CSR: its request is parsed by the same one parser as at create (the
/// store's index came from that parse) and validated again against today's rules.
fn sign_stored(
    core: &crate::core::Core,
    csr: &CertificateSigningRequest,
) -> Result<crate::core::Issued, SignFailure> {
    let v = crate::issue::validate(&csr.spec, core.config()).map_err(|e| SignFailure::Refused {
        message: e.to_string(),
    })?;
    core.sign(&v).map_err(|e| {
        tracing::warn!(error = %e, "issuing failed; will retry");
        SignFailure::Unavailable
    })
}

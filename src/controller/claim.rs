//! Active-active mode's claim: before it signs, the owner of a CSR writes the annotation
//! `kubesigner.io/claimed-by: <identity>/<time>` with a replace of the CSR conditional on the
//! resourceVersion it read, and writes the certificate through `/status` conditional on the
//! resourceVersion that claim write returned. Any later claim, by any replica, moves the
//! resourceVersion on, so the earlier claimant's certificate write fails with 409; after a
//! 409 the certificate is written again only while the CSR still carries our own claim
//! (`write::write_certificate`'s `still_ours`). Why an annotation and not a condition: a
//! condition goes through `/status`, which the certificate write also uses and whose
//! conditions kube-apiserver keeps across writers (Approved/Denied are `/approval`'s); an
//! annotation is metadata any writer of the main resource replaces whole, needs no new
//! condition type that other tools would have to ignore, and `update` on the main resource
//! is the one extra verb.

use std::time::{Instant, SystemTime};

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::PostParams;
use tokio::sync::watch;

use super::members::{CLAIM_ANNOTATION, ClaimNote, ClaimOutcome, ClaimStep, View, claim_step};
use super::reconcile::{ReconcileError, name_of};

/// Active-active settings of the reconciler.
#[derive(Debug, Clone)]
pub struct Active {
    /// The membership loop's view.
    pub view: watch::Receiver<View>,
    /// How long a live member's claim is honoured (the lease duration).
    pub stale_after: std::time::Duration,
}

/// The claim annotation on `csr`, if any.
pub fn claim_of(csr: &CertificateSigningRequest) -> Option<&str> {
    csr.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLAIM_ANNOTATION))
        .map(String::as_str)
}

/// What became of one claim attempt.
#[derive(Debug)]
pub enum Claimed {
    /// Ours; the CSR as the claim write returned it, and the annotation value written.
    Won(Box<CertificateSigningRequest>, String),
    /// A live member's fresh claim is on it: leave it to that member.
    Deferred(String),
    /// Another writer changed the CSR first (409); look again later.
    Lost,
    /// We no longer own the key, or our window closed.
    NotOwner,
}

impl Active {
    /// The current view.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// Claims `csr` (keyed `key`) for `me` if the rules allow; one conditional write.
    pub async fn claim(
        &self,
        api: &kube::Api<CertificateSigningRequest>,
        me: &str,
        key: &str,
        mut csr: CertificateSigningRequest,
    ) -> Result<Claimed, ReconcileError> {
        let view = self.view();
        if !view.owns(me, key, Instant::now()) {
            return Ok(Claimed::NotOwner);
        }
        let now = SystemTime::now();
        let metrics = crate::metrics::global();
        match claim_step(claim_of(&csr), me, &view.members, now, self.stale_after) {
            ClaimStep::Defer { holder } => {
                metrics.claim("deferred");
                return Ok(Claimed::Deferred(holder));
            }
            ClaimStep::Take => {}
        }
        let name = name_of(&csr);
        let value = ClaimNote::value(me, now);
        csr.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(CLAIM_ANNOTATION.to_owned(), value.clone());
        match api.replace(&name, &PostParams::default(), &csr).await {
            Ok(c) => {
                metrics.claim("won");
                tracing::debug!(csr = %name, claim = %value, "claimed");
                Ok(Claimed::Won(Box::new(c), value))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                metrics.claim("lost");
                tracing::info!(csr = %name, "claim lost a race (409)");
                Ok(Claimed::Lost)
            }
            Err(e) => Err(ReconcileError::Api {
                csr: name,
                source: Box::new(e),
            }),
        }
    }
}

/// [`super::members::may_sign`] for a claim outcome just written.
pub fn may_sign_now(view: &View, me: &str, key: &str, c: &CertificateSigningRequest) -> bool {
    let outcome = ClaimOutcome::Won {
        resource_version: c.metadata.resource_version.clone().unwrap_or_default(),
    };
    super::members::may_sign(view, me, key, Instant::now(), &outcome)
}

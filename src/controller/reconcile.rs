//! The reconcile loop (runs only while this replica leads): list + watch CSRs; for our signer
//! names, approve by policy through `/approval` (with `--approve`) and sign approved CSRs
//! without a certificate, writing `status.certificate` through `/status`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::Api;
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};

use super::approval::{self, TokenBindings};
use super::claim::Active;
use super::write;
use crate::conditions::{
    ConditionType, SIGNER_VALIDATION_FAILURE, has_certificate, has_condition, needs_signing,
};
use crate::core::{Core, Decision};
use crate::issue::{CsrRejection, SignerName, ValidatedCsr};
use crate::store::{Store, StoreError};

/// Delay before a CSR whose handling failed is tried again.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Failed CSRs waiting for a retry (further failures are dropped until the next event;
/// a storm of failures must not grow memory without bound).
const RETRY_QUEUE: usize = 4096;
/// CSRs handled at once (API round trips and local fsyncs overlap; token signatures take
/// their own bounded session pool).
const MAX_IN_FLIGHT: usize = 16;
/// Keys (node or CSR name) of the CSRs being handled.
type Busy = Arc<std::sync::Mutex<HashSet<String>>>;

/// Whether this replica may act, as the election loop says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// Another replica leads (or nobody).
    Follower,
    /// We lead; we may sign until this instant unless renewed.
    Leader {
        /// End of the signing window.
        until: Instant,
    },
}

/// Where the object about to be signed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A watch event (may be older than our own last write).
    FromWatch,
    /// The answer to our own write a moment ago.
    JustWritten,
}

/// Why one CSR could not be handled (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// An API call failed.
    #[error("csr {csr}: {source}")]
    Api {
        /// The CSR.
        csr: String,
        /// The client's error.
        source: Box<kube::Error>,
    },
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// The issuer (token) failed.
    #[error("csr {csr}: issuing failed: {source}")]
    Issue {
        /// The CSR.
        csr: String,
        /// Why.
        source: crate::issue::IssueError,
    },
    /// The leadership (signing window) ended: nothing more is written.
    #[error("not leading: stopped before writing")]
    NotLeader,
    /// Active-active: a live member's fresh claim is on the CSR.
    #[error("claimed by {holder}: left to it")]
    Deferred {
        /// The claimant.
        holder: String,
    },
    /// Active-active: our claim write lost a race (409).
    #[error("claim lost a race")]
    ClaimLost,
    /// A blocking task failed.
    #[error("blocking task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Everything the loop needs.
pub struct Reconciler {
    /// CSRs, cluster-wide.
    pub csrs: Api<CertificateSigningRequest>,
    /// The signer names served.
    pub signers: Vec<SignerName>,
    /// Run the approval policy.
    pub approve: bool,
    /// The issuance core (validation, policy, signing), shared with `serve`'s code path.
    pub core: Arc<Core>,
    /// Local store (node facts, audit).
    pub store: Store,
    /// Bootstrap token bindings.
    pub bindings: Arc<TokenBindings>,
    /// Our holder identity (the audit actor).
    pub identity: String,
    /// The election's verdict (active-active: our membership's signing window).
    pub leadership: watch::Receiver<Leadership>,
    /// Active-active mode: the membership view and the claim rules (None: leader mode).
    pub active: Option<Active>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

pub(super) fn name_of(csr: &CertificateSigningRequest) -> String {
    csr.metadata.name.clone().unwrap_or_default()
}

impl Reconciler {
    /// True while the signing window is open.
    pub fn may_sign(&self) -> bool {
        matches!(*self.leadership.borrow(), Leadership::Leader { until } if Instant::now() < until)
    }

    fn ours(&self, csr: &CertificateSigningRequest) -> bool {
        SignerName::parse(&csr.spec.signer_name).is_some_and(|s| self.signers.contains(&s))
    }

    /// Runs until cancelled: list + watch, handle every event (up to [`MAX_IN_FLIGHT`] at
    /// once, one at a time per node), retry failures. Cancelling this future cancels the
    /// per-CSR tasks too (they live in its `JoinSet`).
    pub async fn run(self: Arc<Self>) {
        let (retry_tx, mut retry_rx) = mpsc::channel::<String>(RETRY_QUEUE);
        let mut stream = watcher(self.csrs.clone(), watcher::Config::default()).boxed();
        let mut initial: Vec<CertificateSigningRequest> = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        let busy: Busy = Arc::new(std::sync::Mutex::new(HashSet::new()));
        let mut view = self.active.as_ref().map(|a| a.view.clone());
        let mut members = view.as_ref().map(|v| v.borrow().members.clone());
        loop {
            let csrs = tokio::select! {
                Some(()) = membership_changed(&mut view, &mut members) => {
                    // Ownership moved: list again (every CSR is looked at with the new view).
                    stream = watcher(self.csrs.clone(), watcher::Config::default()).boxed();
                    initial.clear();
                    continue;
                }
                ev = stream.next() => match ev {
                    Some(Ok(watcher::Event::Init)) => { initial.clear(); continue; }
                    Some(Ok(watcher::Event::InitApply(o))) => { initial.push(o); continue; }
                    Some(Ok(watcher::Event::InitDone)) => {
                        self.count_owned(&initial);
                        std::mem::take(&mut initial)
                    }
                    Some(Ok(watcher::Event::Apply(o))) => vec![o],
                    Some(Ok(watcher::Event::Delete(_))) => continue,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "csr watch failed; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                        continue;
                    }
                    None => return,
                },
                Some(name) = retry_rx.recv() => match self.csrs.get_opt(&name).await {
                    Ok(Some(o)) => vec![o],
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(csr = %name, error = %e, "re-read failed");
                        requeue(&retry_tx, name);
                        continue;
                    }
                },
                Some(_) = tasks.join_next() => continue,
            };
            self.observe_all(&csrs).await;
            for csr in csrs {
                while tasks.len() >= MAX_IN_FLIGHT {
                    tasks.join_next().await;
                }
                self.dispatch(csr, &mut tasks, &busy, &retry_tx);
            }
        }
    }

    /// Starts one CSR's task unless its node (or name) is being handled already: then it is
    /// looked at again after [`RETRY_DELAY`] (a second CSR for a node must see the facts the
    /// first one leaves, e.g. its new certificate).
    fn dispatch(
        self: &Arc<Self>,
        csr: CertificateSigningRequest,
        tasks: &mut tokio::task::JoinSet<()>,
        busy: &Busy,
        retry_tx: &mpsc::Sender<String>,
    ) {
        let name = name_of(&csr);
        if !self.ours(&csr) {
            return;
        }
        // The one parse of this object's request: the per-node key and every decision below
        // read it.
        let validated = crate::issue::validate(&csr.spec, self.core.config());
        let key = work_key(&csr, &validated);
        if let Some(a) = &self.active
            && !a.view().owns(&self.identity, &key, Instant::now())
        {
            return;
        }
        let taken = busy
            .lock()
            .map(|mut b| b.insert(key.clone()))
            .unwrap_or(false);
        if !taken {
            requeue(retry_tx, name);
            return;
        }
        let (me, busy, tx) = (Arc::clone(self), Arc::clone(busy), retry_tx.clone());
        tasks.spawn(async move {
            let r = Arc::clone(&me).handle(csr, validated, &key).await;
            if let Ok(mut b) = busy.lock() {
                b.remove(&key);
            }
            match r {
                Ok(()) => {}
                Err(ReconcileError::NotLeader) => {
                    tracing::info!(csr = %name, "signing window closed; leaving it to the next leader");
                }
                Err(e @ (ReconcileError::Deferred { .. } | ReconcileError::ClaimLost)) => {
                    tracing::debug!(csr = %name, why = %e, "not claimed; looking again later");
                    requeue(&tx, name);
                }
                Err(e) => {
                    tracing::warn!(csr = %name, error = %e, "csr not handled; retrying");
                    requeue(&tx, name);
                }
            }
        });
    }

    /// Runs on every replica, leader or not, until cancelled: watches CSRs and records the
    /// kubelet client certificates it sees as node facts, so whichever replica leads next
    /// knows which nodes have a live certificate even after CSR garbage collection.
    pub async fn observe_forever(self: Arc<Self>) {
        let mut stream = watcher(self.csrs.clone(), watcher::Config::default()).boxed();
        loop {
            match stream.next().await {
                Some(Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o))) => {
                    self.observe_all(std::slice::from_ref(&o)).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "observer watch failed; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                None => return,
            }
        }
    }

    /// Active-active: sets the gauge of CSRs needing work that this replica owns (at each
    /// full list).
    fn count_owned(&self, csrs: &[CertificateSigningRequest]) {
        let Some(a) = &self.active else {
            return;
        };
        let view = a.view();
        let now = Instant::now();
        let owned = csrs
            .iter()
            .filter(|c| {
                self.ours(c)
                    && !has_certificate(c)
                    && !has_condition(c, ConditionType::Denied)
                    && !has_condition(c, ConditionType::Failed)
            })
            .filter(|c| {
                let v = crate::issue::validate(&c.spec, self.core.config());
                view.owns(&self.identity, &work_key(c, &v), now)
            })
            .count();
        crate::metrics::global()
            .controller_csrs_owned
            .set(i64::try_from(owned).unwrap_or(i64::MAX));
    }

    /// Records the kubelet client certificates in `csrs` as node facts (before any decision,
    /// so a new leader knows what the previous one issued).
    async fn observe_all(&self, csrs: &[CertificateSigningRequest]) {
        let issued: Vec<_> = csrs
            .iter()
            .filter(|c| self.ours(c) && has_certificate(c))
            .cloned()
            .collect();
        if issued.is_empty() {
            return;
        }
        let (store, core) = (self.store.clone(), Arc::clone(&self.core));
        let r = tokio::task::spawn_blocking(move || {
            for c in &issued {
                let Ok(v) = crate::issue::validate(&c.spec, core.config()) else {
                    continue;
                };
                if let Some(rec) = approval::issued_record(&v, c) {
                    store.observe_issued(&rec, &name_of(c))?;
                }
            }
            Ok::<(), StoreError>(())
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record observed certificates"),
            Err(e) => tracing::warn!(error = %e, "cannot record observed certificates"),
        }
    }

    /// One CSR, with the result of validating its one parse: fail / approve / sign as needed.
    async fn handle(
        self: Arc<Self>,
        csr: CertificateSigningRequest,
        validated: Result<ValidatedCsr, CsrRejection>,
        key: &str,
    ) -> Result<(), ReconcileError> {
        if !self.ours(&csr)
            || has_certificate(&csr)
            || has_condition(&csr, ConditionType::Denied)
            || has_condition(&csr, ConditionType::Failed)
        {
            return Ok(());
        }
        let approved = has_condition(&csr, ConditionType::Approved);
        if !approved && !self.approve {
            return Ok(());
        }
        let name = name_of(&csr);
        let v = match validated {
            Ok(v) => v,
            Err(CsrRejection::SignerValidation(f)) => {
                return self.fail(csr, f.to_string()).await;
            }
            Err(CsrRejection::Invalid(e)) => return self.fail(csr, e.to_string()).await,
            Err(CsrRejection::NotOurSigner { .. }) => return Ok(()),
        };
        let (csr, fresh) = if approved {
            (csr, Freshness::FromWatch)
        } else {
            let me = Arc::clone(&self);
            let (v2, n2) = (v.clone(), name.clone());
            let d = tokio::task::spawn_blocking(move || {
                approval::decide(&me.core, &me.store, &me.bindings, &v2, &n2)
            })
            .await??;
            match self.apply_decision(csr, d).await? {
                Some(c) if needs_signing(&c) => (c, Freshness::JustWritten),
                _ => return Ok(()),
            }
        };
        tracing::debug!(csr = %name, "signing");
        self.sign(csr, v, fresh, key).await
    }

    async fn fail(
        &self,
        csr: CertificateSigningRequest,
        message: String,
    ) -> Result<(), ReconcileError> {
        if !self.may_sign() {
            return Err(ReconcileError::NotLeader);
        }
        let name = name_of(&csr);
        tracing::info!(csr = %name, %message, "csr fails signer validation");
        write::add_status_condition(
            &self.csrs,
            csr,
            ConditionType::Failed,
            SIGNER_VALIDATION_FAILURE,
            &message,
        )
        .await
        .map(|_| ())
        .map_err(|source| ReconcileError::Api { csr: name, source })
    }

    /// Writes Approved / Denied through `/approval`; returns the CSR as written.
    async fn apply_decision(
        &self,
        csr: CertificateSigningRequest,
        d: Decision,
    ) -> Result<Option<CertificateSigningRequest>, ReconcileError> {
        let name = name_of(&csr);
        let (type_, reason, message) = match d {
            Decision::Pending { .. } => return Ok(None),
            Decision::Approve { reason, message } => (ConditionType::Approved, reason, message),
            Decision::Deny { reason, message } => (ConditionType::Denied, reason, message),
        };
        if !self.may_sign() {
            return Err(ReconcileError::NotLeader);
        }
        let written = write::add_approval_condition(&self.csrs, csr, type_, &reason, &message)
            .await
            .map_err(|source| ReconcileError::Api {
                csr: name.clone(),
                source,
            })?;
        tracing::info!(csr = %name, condition = type_.as_str(), %reason, "approval written");
        Ok(written)
    }
}

/// The key a CSR is handled and owned by: its node (so one node's CSRs are handled one at a
/// time, by one replica: the ★ one-live-certificate-per-node check stays in one local store),
/// else its name.
fn work_key(
    csr: &CertificateSigningRequest,
    validated: &Result<ValidatedCsr, CsrRejection>,
) -> String {
    let name = name_of(csr);
    match validated {
        Ok(v) => {
            approval::node_of(v).map_or_else(|| format!("csr/{name}"), |n| format!("node/{n}"))
        }
        Err(_) => format!("csr/{name}"),
    }
}

/// Completes when the membership (not just the window) changed; never when `view` is None
/// (leader mode) or its sender is gone.
async fn membership_changed(
    view: &mut Option<watch::Receiver<super::members::View>>,
    last: &mut Option<Vec<String>>,
) -> Option<()> {
    let Some(rx) = view.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = rx.borrow_and_update().members.clone();
        if last.as_ref() != Some(&now) {
            *last = Some(now);
            return Some(());
        }
    }
}

fn requeue(tx: &mpsc::Sender<String>, name: String) {
    let tx = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RETRY_DELAY).await;
        let _ = tx.try_send(name);
    });
}

//! Controller mode (external signer): a kube-rs client against a real kube-apiserver that
//! approves (optionally) and signs the kubelet signer names with the same core as `serve`
//! (`policy::Approver`, `issue::Issuer` over the token key). Replicas elect one leader with a
//! `coordination.k8s.io/v1` Lease; only the leader reconciles, and only inside its signing
//! window.
//!
//! Layout: `config` (the `[controller]` section), `election` (pure Lease decisions), `lease`
//! (Lease I/O), `reconcile` (list + watch + per-CSR work), `sign` (one signature, the
//! `/status` write, the local audit around it), `approval` (policy inputs),
//! `write` (conditional subresource writes).
//!
//! Active-active mode (`mode = "active-active"`): `members` (pure: live members, rendezvous
//! owner, claim rules), `active` (each replica's own Lease and the membership view), `claim`
//! (the conditional claim annotation written before a signature).

pub mod active;
pub mod approval;
pub mod claim;
pub mod config;
pub mod election;
pub mod lease;
pub mod members;
pub mod reconcile;
mod sign;
pub mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::ControllerConfigError;
use lease::{Attempt, Elector};
pub use reconcile::{Leadership, Reconciler};

/// The signer's health (the token signer's readiness).
pub type HealthFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// Timing of the election loop.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Interval between attempts.
    pub retry_period: Duration,
    /// A leader whose last successful renewal started longer ago than this steps down.
    pub renew_deadline: Duration,
    /// How long after a renewal's start the leader may sign.
    pub signing_window: Duration,
}

/// The running controller: the election loop and, while leading, the reconcile task.
pub struct Controller {
    elector: Elector,
    reconciler: Arc<Reconciler>,
    leadership: watch::Sender<Leadership>,
    health: HealthFn,
    timing: Timing,
    task: Option<JoinHandle<()>>,
    last_renew: Option<Instant>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("elector", &self.elector)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller; `leadership` is the sender whose receiver `reconciler` holds.
    pub fn new(
        elector: Elector,
        reconciler: Reconciler,
        leadership: watch::Sender<Leadership>,
        health: HealthFn,
        timing: Timing,
    ) -> Controller {
        Controller {
            elector,
            reconciler: Arc::new(reconciler),
            leadership,
            health,
            timing,
            task: None,
            last_renew: None,
        }
    }

    /// Stops signing first (the reconcile task is cancelled, the window closed), then logs.
    fn step_down(&mut self, why: &str) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.leadership.send_replace(Leadership::Follower);
        if self.last_renew.take().is_some() {
            tracing::warn!(identity = %self.elector.identity(), why, leader = false, "leadership lost: stepped down");
        }
    }

    fn lead(&mut self, started: Instant) {
        self.last_renew = Some(started);
        self.leadership.send_replace(Leadership::Leader {
            until: started + self.timing.signing_window,
        });
        if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
            tracing::warn!("reconcile task ended; starting it again");
            self.task = None;
        }
        if self.task.is_none() {
            tracing::info!(identity = %self.elector.identity(), leader = true, "leadership acquired: reconciling");
            self.task = Some(tokio::spawn(Arc::clone(&self.reconciler).run()));
        }
    }

    async fn round(&mut self) {
        if !(self.health)() {
            if self.last_renew.is_some() {
                self.step_down("signer not ready");
                if let Err(e) = self.elector.release().await {
                    tracing::warn!(error = %e, "cannot release the lease");
                }
            }
            return;
        }
        let attempt = tokio::time::timeout(
            self.timing.renew_deadline,
            self.elector.try_acquire_or_renew(),
        )
        .await;
        match attempt {
            Ok(Ok(Attempt::Held { started, .. })) => self.lead(started),
            Ok(Ok(Attempt::HeldBy { holder })) => {
                if self.last_renew.is_some() {
                    self.step_down("lease held by another replica");
                }
                tracing::debug!(%holder, "following");
            }
            other => {
                match other {
                    Ok(Err(e)) => tracing::warn!(error = %e, "lease attempt failed"),
                    Err(_) => tracing::warn!("lease attempt timed out"),
                    _ => tracing::debug!("lease write lost a race"),
                }
                let overdue = self
                    .last_renew
                    .is_some_and(|t| t.elapsed() > self.timing.renew_deadline);
                if overdue {
                    self.step_down("renew deadline passed");
                }
            }
        }
    }

    /// Runs until `shutdown` completes; then stops signing and releases the Lease.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let observer = tokio::spawn(Arc::clone(&self.reconciler).observe_forever());
        every_round_until(self.timing.retry_period, shutdown, async || {
            self.round().await
        })
        .await;
        self.step_down("shutting down");
        observer.abort();
        // Also when not leading by our own count: an acquisition cancelled by the shutdown may
        // have been written. `release` reads the Lease and gives it up only if it is ours.
        let limit = self.timing.renew_deadline;
        self.elector.release_at_stop(limit, "lease").await;
    }
}

/// The loop both modes run: one `round` every `retry_period` (none skipped to catch up) until
/// `shutdown` completes, which also ends a round in progress.
async fn every_round_until(
    retry_period: Duration,
    shutdown: impl Future<Output = ()>,
    mut round: impl AsyncFnMut(),
) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(retry_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = round() => {}
        }
    }
}

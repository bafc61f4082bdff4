//! Active-active mode's membership loop: every `retry_period`, renew this replica's own Lease
//! (`<lease_name>-<identity>`, conflict-safe as the leader's), then read the group's Leases
//! and publish the [`View`] (live members, end of our signing window) the reconciler decides
//! ownership with. A replica whose token is not ready, or whose renewal is overdue, leaves
//! at once: the reconcile task is cancelled and the window closed before anything else, and
//! (token lost, SIGTERM) its Lease is released so the others take its CSRs over.

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::lease::{Attempt, Elector};
use super::members::{STALE_MEMBER_AGE, View, live_members, stale_member_leases};

/// Stale member Leases deleted per round at most (a backlog of thousands, from a long history
/// of restarts, drains over rounds instead of one burst of deletes).
const MAX_COLLECT_PER_ROUND: usize = 5;
use super::{HealthFn, Leadership, Reconciler, Timing};

/// The running active-active replica.
pub struct Member {
    elector: Elector,
    group: String,
    reconciler: Arc<Reconciler>,
    leadership: watch::Sender<Leadership>,
    view: watch::Sender<View>,
    health: HealthFn,
    timing: Timing,
    task: Option<JoinHandle<()>>,
    last_renew: Option<Instant>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("elector", &self.elector)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// A member of group `group` (the `lease_name`); `leadership` and `view` are the senders
    /// whose receivers `reconciler` holds.
    pub fn new(
        elector: Elector,
        group: String,
        reconciler: Reconciler,
        channels: (watch::Sender<Leadership>, watch::Sender<View>),
        health: HealthFn,
        timing: Timing,
    ) -> Member {
        Member {
            elector,
            group,
            reconciler: Arc::new(reconciler),
            leadership: channels.0,
            view: channels.1,
            health,
            timing,
            task: None,
            last_renew: None,
        }
    }

    /// Stops signing first (task cancelled, window closed), then logs.
    fn leave(&mut self, why: &str) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.leadership.send_replace(Leadership::Follower);
        self.view.send_replace(View::outside());
        crate::metrics::global().controller_members.set(0);
        if self.last_renew.take().is_some() {
            tracing::warn!(identity = %self.elector.identity(), why, member = false,
                "left the signing group: stopped signing");
        }
    }

    async fn members(&self) -> Option<Vec<String>> {
        let limit = self.timing.renew_deadline;
        match tokio::time::timeout(limit, self.elector.list_namespace()).await {
            Ok(Ok(leases)) => {
                let now = SystemTime::now();
                self.collect_stale(&leases, now).await;
                Some(live_members(&leases, &self.group, now))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot list the member leases");
                None
            }
            Err(_) => {
                tracing::warn!("listing the member leases timed out");
                None
            }
        }
    }

    /// Deletes up to [`MAX_COLLECT_PER_ROUND`] member Leases of the group that expired long
    /// ago ([`STALE_MEMBER_AGE`]); failures (a 409: renewed meanwhile; a 404: another member
    /// was first) are left for a later round.
    async fn collect_stale(
        &self,
        leases: &[k8s_openapi::api::coordination::v1::Lease],
        now: SystemTime,
    ) {
        let stale = stale_member_leases(leases, &self.group, now, STALE_MEMBER_AGE);
        for (name, rv) in stale.into_iter().take(MAX_COLLECT_PER_ROUND) {
            match self.elector.delete_at(&name, &rv).await {
                Ok(()) => tracing::info!(lease = %name, "deleted a member lease expired long ago"),
                Err(e) => {
                    tracing::debug!(lease = %name, error = %e, "stale member lease not deleted")
                }
            }
        }
    }

    async fn renewed(&mut self, started: Instant) {
        let me = self.elector.identity().to_owned();
        let members = match self.members().await {
            Some(mut m) => {
                // Our own Lease was just written: we are live whatever the list says.
                if !m.contains(&me) {
                    m.push(me.clone());
                    m.sort();
                }
                m
            }
            // Keep the last view's members (we are in it: we just renewed).
            None => {
                let mut m = self.view.borrow().members.clone();
                if !m.contains(&me) {
                    m.push(me.clone());
                    m.sort();
                }
                m
            }
        };
        let until = started + self.timing.signing_window;
        if Instant::now() >= until {
            // The renewal and the list took the whole window: nothing to sign with.
            return;
        }
        let changed = self.view.borrow().members != members;
        if changed {
            tracing::info!(identity = %me, members = ?members, "membership changed");
        }
        crate::metrics::global()
            .controller_members
            .set(i64::try_from(members.len()).unwrap_or(i64::MAX));
        self.view.send_replace(View {
            members,
            until: Some(until),
        });
        self.leadership.send_replace(Leadership::Leader { until });
        self.last_renew = Some(started);
        if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
            tracing::warn!("reconcile task ended; starting it again");
            self.task = None;
        }
        if self.task.is_none() {
            tracing::info!(identity = %me, member = true, "joined the signing group: reconciling");
            self.task = Some(tokio::spawn(Arc::clone(&self.reconciler).run()));
        }
    }

    async fn round(&mut self) {
        if !(self.health)() {
            if self.last_renew.is_some() {
                self.leave("signer not ready");
                if let Err(e) = self.elector.release().await {
                    tracing::warn!(error = %e, "cannot release the member lease");
                }
            }
            return;
        }
        // A member waits for a renewal no longer than its window lasts: when the API stalls,
        // it leaves (and says so) as the window closes, not a renew deadline later.
        let window_end = self.last_renew.map(|t| t + self.timing.signing_window);
        let limit = window_end.map_or(self.timing.renew_deadline, |end| {
            end.saturating_duration_since(Instant::now())
                .min(self.timing.renew_deadline)
        });
        let attempt = tokio::time::timeout(limit, self.elector.try_acquire_or_renew()).await;
        match attempt {
            Ok(Ok(Attempt::Held { started, .. })) => self.renewed(started).await,
            Ok(Ok(Attempt::HeldBy { holder })) => {
                // Only a second process with our identity can hold our member Lease.
                self.leave("member lease held by another process");
                tracing::error!(%holder, identity = %self.elector.identity(),
                    "another replica uses this identity: give each replica its own --identity");
            }
            other => {
                match other {
                    Ok(Err(e)) => tracing::warn!(error = %e, "member lease renewal failed"),
                    Err(_) => tracing::warn!("member lease renewal timed out"),
                    _ => tracing::debug!("member lease write lost a race"),
                }
                if window_end.is_some_and(|end| Instant::now() >= end) {
                    self.leave("signing window ended without a renewal");
                }
            }
        }
    }

    /// Runs until `shutdown` completes; then stops signing and releases the member Lease.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let observer = tokio::spawn(Arc::clone(&self.reconciler).observe_forever());
        super::every_round_until(self.timing.retry_period, shutdown, async || {
            self.round().await;
        })
        .await;
        self.leave("shutting down");
        observer.abort();
        let limit = self.timing.renew_deadline;
        self.elector.release_at_stop(limit, "member lease").await;
    }
}

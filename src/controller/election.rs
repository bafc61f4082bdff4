//! Leader election decisions over a `coordination.k8s.io/v1` Lease, as pure functions: what
//! the Lease says, what this replica may do, and the object it writes. The I/O (get, create,
//! conditional replace) is `lease.rs`'s.
//!
//! Safety rests on two rules. (1) Every write is conditional on the resourceVersion that was
//! read (create fails on an existing name, replace fails on a stale version), so of two
//! replicas racing for the same Lease exactly one wins. (2) A replica takes over another's
//! Lease only after it has itself watched the Lease stay unchanged for a whole lease duration
//! on its own monotonic clock (client-go's "observed time" rule), so wall-clock skew between
//! hosts cannot shorten the previous holder's term; and the holder stops signing before its
//! term could end in anyone's eyes (`signing_window`).

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff;

/// The part of a Lease that says who holds it: when it changes, the holder is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `spec.holderIdentity` (None when empty or released).
    pub holder: Option<String>,
    /// `spec.renewTime` as written.
    pub renew_time: Option<MicroTime>,
    /// `spec.leaseDurationSeconds`.
    pub duration_seconds: Option<i32>,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
}

impl Claim {
    /// The claim a Lease makes.
    pub fn of(lease: &Lease) -> Claim {
        let spec = lease.spec.as_ref();
        Claim {
            holder: spec
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty()),
            renew_time: spec.and_then(|s| s.renew_time.clone()),
            duration_seconds: spec.and_then(|s| s.lease_duration_seconds),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }

    /// The claim's own term: from its last renewal for its duration (a released Lease says 1 s).
    fn term(&self) -> Duration {
        Duration::from_secs(
            self.duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0),
        )
    }
}

/// When this replica last saw the Lease change, by its own monotonic clock.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The claim seen.
    pub claim: Claim,
    /// When it was first seen in this form.
    pub since: Instant,
}

impl Observed {
    /// Updates the observation with a fresh read: the clock restarts only when the claim
    /// changed.
    pub fn update(prev: Option<Observed>, claim: Claim, now: Instant) -> Observed {
        match prev {
            Some(o) if o.claim == claim => o,
            _ => Observed { claim, since: now },
        }
    }
}

/// What this replica may do with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No Lease exists: create it.
    Create,
    /// Write our claim over the one read (we hold it, it is free, or it expired).
    Claim {
        /// The holder changes to us (a leadership transition).
        transition: bool,
    },
    /// Another replica holds it and its term has not run out.
    Wait {
        /// The holder.
        holder: String,
    },
}

/// Decides from the Lease read (None: absent) and how long it has looked like this.
pub fn decide(observed: Option<&Observed>, me: &str, now: Instant, wall_now: SystemTime) -> Step {
    let Some(obs) = observed else {
        return Step::Create;
    };
    let claim = &obs.claim;
    let Some(holder) = claim.holder.as_deref() else {
        return Step::Claim { transition: true };
    };
    if holder == me {
        return Step::Claim { transition: false };
    }
    // Expired only when both hold: our own clock saw no change for the term, and the term
    // written in the Lease has run out by our wall clock (no renewal time: expired).
    let seen_long_enough = now.saturating_duration_since(obs.since) > claim.term();
    let wall_expired = claim.renew_time.as_ref().is_none_or(|t| {
        SystemTime::from(t.0)
            .checked_add(claim.term())
            .is_none_or(|end| end < wall_now)
    });
    if seen_long_enough && wall_expired {
        Step::Claim { transition: true }
    } else {
        Step::Wait {
            holder: holder.to_owned(),
        }
    }
}

/// The Lease to write for `step` (Create or Claim), keeping the read object's metadata (and so
/// its resourceVersion: the write is conditional on it).
pub fn claimed(
    read: Option<&Lease>,
    name: &str,
    namespace: &str,
    me: &str,
    lease_duration: Duration,
    wall_now: SystemTime,
) -> Lease {
    let now = micro_now(wall_now);
    let prev = read.and_then(|l| l.spec.clone()).unwrap_or_default();
    let ours = prev.holder_identity.as_deref() == Some(me);
    let transitions = prev.lease_transitions.unwrap_or(0);
    let spec = LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(seconds(lease_duration)),
        acquire_time: if ours {
            prev.acquire_time.clone()
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(match read {
            Some(_) if !ours => transitions.saturating_add(1),
            _ => transitions,
        }),
        ..prev
    };
    let metadata = match read {
        Some(l) => l.metadata.clone(),
        None => ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
    };
    Lease {
        metadata,
        spec: Some(spec),
    }
}

/// The Lease to write when a leader steps down on purpose: no holder, a one-second term
/// (client-go's release), so a successor takes over at once.
pub fn released(read: &Lease, wall_now: SystemTime) -> Lease {
    let mut lease = read.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(micro_now(wall_now));
    lease
}

/// How long after the start of a successful renewal the leader may keep signing: the renew
/// deadline, and never more than the lease duration less a margin for clock-rate drift.
pub fn signing_window(lease_duration: Duration, renew_deadline: Duration) -> Duration {
    let margin = (lease_duration / 10).max(SKEW_MARGIN_MIN);
    renew_deadline.min(lease_duration.saturating_sub(margin))
}

/// Smallest margin kept between the end of the signing window and the end of the lease term.
const SKEW_MARGIN_MIN: Duration = Duration::from_millis(200);

/// Whole seconds, rounded up (the Lease field is an int32 of seconds).
fn seconds(d: Duration) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s).unwrap_or(i32::MAX)
}

/// Now as a MicroTime (microsecond precision, as the API serialises it).
pub fn micro_now(wall_now: SystemTime) -> MicroTime {
    let ts = jiff::Timestamp::try_from(wall_now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let micros = ts.as_microsecond();
    MicroTime(jiff::Timestamp::from_microsecond(micros).unwrap_or(ts))
}

#[cfg(test)]
mod tests;

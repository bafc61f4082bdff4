//! Active-active decisions, as pure functions: who the live members are (from the member
//! Leases at a time `now`), which member owns a CSR (rendezvous hashing), what to do with the
//! claim annotation a CSR carries, and whether this replica may sign. The I/O is
//! `active.rs`'s and `claim.rs`'s.
//!
//! Safety does not rest on everybody agreeing on the membership: two replicas whose views
//! differ may both think they own a CSR. It rests on the claim (`claim.rs`): each writes its
//! claim annotation with a replace conditional on the resourceVersion it read, then writes the
//! certificate through `/status` conditional on the resourceVersion its claim write returned.
//! Of two claimants the later claim moves the resourceVersion on, so the earlier one's
//! certificate write fails with 409 (and a certificate, once written, is never replaced), so
//! a CSR gets at most one certificate whatever the views. The views only decide how little
//! work is wasted.

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff;

/// The label every member Lease carries: its value is the group's `lease_name`.
pub const MEMBER_LABEL: &str = "kubesigner.io/member-of";
/// The CSR annotation a replica writes before it signs: `<identity>/<RFC 3339 time>`.
pub const CLAIM_ANNOTATION: &str = "kubesigner.io/claimed-by";

/// The name of one member's Lease: `<lease_name>-<identity>`.
pub fn member_lease_name(lease_name: &str, identity: &str) -> String {
    format!("{lease_name}-{identity}")
}

/// Whether `l` is labelled a member Lease of group `lease_name`.
fn in_group(l: &Lease, lease_name: &str) -> bool {
    l.metadata
        .labels
        .as_ref()
        .and_then(|m| m.get(MEMBER_LABEL))
        .is_some_and(|v| v == lease_name)
}

/// The live members of group `lease_name` among `leases`, at wall time `now`: the holders of
/// the Leases labelled for the group (and named for their holder) whose term, counted from
/// their last renewal, has not run out. Sorted, without duplicates.
pub fn live_members(leases: &[Lease], lease_name: &str, now: SystemTime) -> Vec<String> {
    let mut out: Vec<String> = leases
        .iter()
        .filter(|l| in_group(l, lease_name))
        .filter_map(|l| {
            let spec = l.spec.as_ref()?;
            let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
            // A Lease named for another identity is not a membership (copied or hand-made).
            if l.metadata.name.as_deref() != Some(&member_lease_name(lease_name, holder)) {
                return None;
            }
            let secs = u64::try_from(spec.lease_duration_seconds?).ok()?;
            let renewed = SystemTime::from(spec.renew_time.as_ref()?.0);
            let end = renewed.checked_add(Duration::from_secs(secs))?;
            (end > now).then(|| holder.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How long after its term ended a member Lease of the group is deleted (by whichever member
/// sees it first): left behind by a replica that was killed, or restarted under a new identity
/// (a Deployment's pod names). An hour: far beyond any renewal, so only the dead are collected,
/// and the delete is conditional on the resourceVersion seen expired besides.
pub const STALE_MEMBER_AGE: Duration = Duration::from_secs(3600);

/// The member Leases of group `lease_name` whose term ended more than `after` before `now`
/// (released ones included), as (name, resourceVersion), oldest first.
pub fn stale_member_leases(
    leases: &[Lease],
    lease_name: &str,
    now: SystemTime,
    after: Duration,
) -> Vec<(String, String)> {
    let mut out: Vec<(SystemTime, String, String)> = leases
        .iter()
        .filter(|l| in_group(l, lease_name))
        .filter_map(|l| {
            let spec = l.spec.as_ref();
            let renewed = spec
                .and_then(|s| s.renew_time.as_ref())
                .map_or(SystemTime::UNIX_EPOCH, |t| SystemTime::from(t.0));
            let secs = spec
                .and_then(|s| s.lease_duration_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0);
            let end = renewed.checked_add(Duration::from_secs(secs))?;
            let stale = end.checked_add(after).is_some_and(|t| t < now);
            if !stale {
                return None;
            }
            Some((
                end,
                l.metadata.name.clone()?,
                l.metadata.resource_version.clone()?,
            ))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n, rv)| (n, rv)).collect()
}

/// The weight of `member` for `key` (rendezvous hashing): the first 8 bytes of
/// SHA-256(member ‖ 0 ‖ key). A fixed function, so every replica, of any version, computes
/// the same owner from the same membership.
fn weight(member: &str, key: &str) -> u64 {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(member.as_bytes());
    ctx.update(&[0]);
    ctx.update(key.as_bytes());
    let d = ctx.finish();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(b)
}

/// The member that owns `key`: the one with the highest weight (ties: the larger id). When a
/// member leaves, only its keys move; when one joins, only the keys it wins move to it.
pub fn owner<'a>(key: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .max_by(|a, b| weight(a, key).cmp(&weight(b, key)).then_with(|| a.cmp(b)))
        .map(String::as_str)
}

/// What this replica sees of the group now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The live members, sorted (us included only while our own Lease is ours and renewed).
    pub members: Vec<String>,
    /// End of our signing window: our last successful renewal's start plus the window. None:
    /// we are not a member (never renewed, lost the token, or stepped down).
    pub until: Option<Instant>,
}

impl View {
    /// Not a member: signs nothing.
    pub fn outside() -> View {
        View {
            members: Vec::new(),
            until: None,
        }
    }

    /// True while our own membership is fresh enough to sign.
    pub fn live(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// True when we are live and own `key`.
    pub fn owns(&self, me: &str, key: &str, now: Instant) -> bool {
        self.live(now) && owner(key, &self.members) == Some(me)
    }
}

/// Whether our claim on a CSR was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The conditional write succeeded; the CSR's resourceVersion after it.
    Won {
        /// The resourceVersion our claim write returned (the `/status` write's precondition).
        resource_version: String,
    },
    /// Another writer changed the CSR first (409), or a live claim of another is on it.
    Lost,
}

/// May this replica spend a signature on the CSR keyed `key`: it is a live member whose own
/// renewal started less than the signing window ago, it owns the key, and its claim was
/// written.
pub fn may_sign(view: &View, me: &str, key: &str, now: Instant, claim: &ClaimOutcome) -> bool {
    view.owns(me, key, now) && matches!(claim, ClaimOutcome::Won { .. })
}

/// A claim annotation, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNote {
    /// The claimant's identity.
    pub holder: String,
    /// When it claimed (its wall clock).
    pub at: SystemTime,
}

impl ClaimNote {
    /// Parses `<identity>/<RFC 3339 time>`; None when malformed.
    pub fn parse(value: &str) -> Option<ClaimNote> {
        let (holder, at) = value.split_once('/')?;
        if holder.is_empty() {
            return None;
        }
        let ts: jiff::Timestamp = at.parse().ok()?;
        Some(ClaimNote {
            holder: holder.to_owned(),
            at: SystemTime::from(ts),
        })
    }

    /// The annotation value of a claim by `holder` at `at` (microseconds, UTC).
    pub fn value(holder: &str, at: SystemTime) -> String {
        format!("{holder}/{}", super::election::micro_now(at).0)
    }
}

/// What to do with the claim a CSR carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimStep {
    /// Write our claim (none, ours, malformed, by a non-member, or stale).
    Take,
    /// A live member claimed it less than `stale_after` ago: leave it to that member.
    Defer {
        /// The claimant.
        holder: String,
    },
}

/// Decides from the CSR's claim annotation (if any), the live members, and our wall clock. A
/// claim by a live member is honoured for `stale_after` (one lease duration): long enough for
/// its signature and write, short enough that a member that claimed and then lost the CSR
/// (a task failure) delays it by at most that. Taking over a claim is always safe (see the
/// module comment): the previous claimant's certificate write then fails with 409.
pub fn claim_step(
    existing: Option<&str>,
    me: &str,
    members: &[String],
    now: SystemTime,
    stale_after: Duration,
) -> ClaimStep {
    let Some(note) = existing.and_then(ClaimNote::parse) else {
        return ClaimStep::Take;
    };
    if note.holder == me || !members.contains(&note.holder) {
        return ClaimStep::Take;
    }
    let fresh = note
        .at
        .checked_add(stale_after)
        .is_some_and(|end| end > now);
    if fresh {
        ClaimStep::Defer {
            holder: note.holder,
        }
    } else {
        ClaimStep::Take
    }
}

#[cfg(test)]
mod tests;

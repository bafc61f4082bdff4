//! Certificate lifetime exactly as kube-controller-manager computes it (reference §2.3).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::IssueError;

/// The backdate applied to NotBefore (reference §2.3: 5 minutes).
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// TTLs at or above this are "long": NotAfter − NotBefore = TTL (reference §2.3: 8 hours).
pub const LONG_TTL: Duration = Duration::from_secs(8 * 3600);

/// A certificate's validity window (whole seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// NotBefore.
    pub not_before: SystemTime,
    /// NotAfter.
    pub not_after: SystemTime,
}

/// TTL = min(requested, max) (requested is ≥ 600 s, checked by validation);
/// NotBefore = now − 5 min; NotAfter = now + TTL − 5 min for TTL ≥ 8 h, else now + TTL;
/// capped at the CA's NotAfter; refused if now or NotBefore is at or past the CA's NotAfter.
pub fn window(
    now: SystemTime,
    requested: Option<Duration>,
    max_ttl: Duration,
    ca_not_after: SystemTime,
) -> Result<Window, IssueError> {
    let now = whole_seconds(now);
    let ttl = requested.map_or(max_ttl, |r| r.min(max_ttl));
    let not_before = now
        .checked_sub(BACKDATE)
        .ok_or(IssueError::TimeOutOfRange)?;
    let end = if ttl >= LONG_TTL {
        now.checked_add(ttl).and_then(|t| t.checked_sub(BACKDATE))
    } else {
        now.checked_add(ttl)
    }
    .ok_or(IssueError::TimeOutOfRange)?;
    if now >= ca_not_after || not_before >= ca_not_after {
        return Err(IssueError::CaExpired);
    }
    Ok(Window {
        not_before,
        not_after: end.min(ca_not_after),
    })
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests;

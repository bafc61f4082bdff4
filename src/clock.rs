//! Wall-clock time as whole seconds since the Unix epoch, the form the store, the audit log and
//! the metrics keep it in: one place for the conversions (no panics, saturating at the edges).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (0 before it, saturating far after it).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// [`unix_secs`] of now.
pub fn unix_now() -> i64 {
    unix_secs(SystemTime::now())
}

/// Now as a Kubernetes `Time` (whole seconds, as the API serializes it), for conditions and
/// timestamps written to objects.
pub fn k8s_now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(unix_now()).unwrap_or_default(),
    )
}

/// The instant `secs` after the epoch (the epoch for negative values).
pub fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The instant `secs` after the epoch; `None` for negative or unrepresentable values (a stored
/// value that cannot be a time).
pub fn from_unix_checked(secs: i64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests;

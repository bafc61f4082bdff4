//! `[gc]`: CSR garbage collection ages (defaults: upstream's csrcleaner). The rules that apply
//! them are `api::gc`.

use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `[gc]`: CSR garbage collection. Every key is optional; defaults are upstream's.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Whether the GC task runs at all.
    pub enabled: bool,
    /// How often the GC task runs (upstream: hourly).
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Age of an approved and issued CSR, from Approved's `lastUpdateTime` (upstream: 1 h).
    #[serde(with = "duration")]
    pub approved_age: Duration,
    /// Age of a denied CSR, from Denied's `lastUpdateTime` (upstream: 1 h).
    #[serde(with = "duration")]
    pub denied_age: Duration,
    /// Age of a failed CSR, from Failed's `lastUpdateTime` (upstream: 1 h).
    #[serde(with = "duration")]
    pub failed_age: Duration,
    /// Age of a pending CSR, from its creation (upstream: 24 h).
    #[serde(with = "duration")]
    pub pending_age: Duration,
}

/// One hour, upstream's age for decided CSRs and its run interval.
const HOUR: Duration = Duration::from_secs(3600);

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            enabled: true,
            interval: HOUR,
            approved_age: HOUR,
            denied_age: HOUR,
            failed_age: HOUR,
            pending_age: 24 * HOUR,
        }
    }
}

//! `[limits]`: per-node and per-requester CSR-create limits. The limiter is `api::limits`.

use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// `[limits]`: CSR-create limits. Every key is optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Whether any limit applies.
    pub enabled: bool,
    /// Most pending CSRs per node name; a create beyond it is refused (429).
    pub max_pending_per_node: usize,
    /// `Retry-After` when the pending cap is hit (pending CSRs clear on decision or GC).
    #[serde(with = "duration")]
    pub pending_retry_after: Duration,
    /// Creates per node name allowed at once.
    pub node_burst: u32,
    /// Then one create per node name per this interval.
    #[serde(with = "duration")]
    pub node_interval: Duration,
    /// Creates per requester allowed at once (generous: fleets share bootstrap tokens).
    pub requester_burst: u32,
    /// Then one create per requester per this interval.
    #[serde(with = "duration")]
    pub requester_interval: Duration,
    /// Most node names, and most requesters, tracked at once (0 tracks none, which turns the
    /// rate limits off but keeps the pending cap).
    pub max_tracked_keys: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: true,
            max_pending_per_node: 3,
            pending_retry_after: Duration::from_secs(60),
            // Covers the kubelet's 2/4/8/16 s backoff, then one per minute (it retries every 32 s).
            node_burst: 5,
            node_interval: Duration::from_secs(60),
            // A 10,000-node storm through one bootstrap token fits in the burst.
            requester_burst: 20_000,
            requester_interval: Duration::from_millis(1),
            max_tracked_keys: 100_000,
        }
    }
}

//! When to renew: at a random point in 70–90 % of the certificate's lifetime (client-go
//! `certificate_manager.go`: `wait.Jitter(total, 0.2) − 0.3·total`), and how long to pause
//! between failed attempts (2, 4, 8, 16 s, then every 32 s).

use std::time::{Duration, SystemTime};

/// Renewal schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RenewAt {
    /// A random point in 70–90 % of the lifetime (the kubelet's rule).
    Lifetime,
    /// A fixed delay after the current certificate was loaded (tests only: the shortest
    /// certificate a signer issues lives 10 minutes).
    After(Duration),
}

/// Lower and upper bounds of the renewal point, in per mille of the lifetime.
const RENEW_FROM_PER_MILLE: u64 = 700;
const RENEW_TO_PER_MILLE: u64 = 900;

impl RenewAt {
    /// How long to wait from `now` for a certificate valid over `validity`.
    pub fn delay(&self, validity: (SystemTime, SystemTime), now: SystemTime) -> Duration {
        match self {
            RenewAt::After(d) => *d,
            RenewAt::Lifetime => {
                let per_mille =
                    super::wait::random_in(RENEW_FROM_PER_MILLE..RENEW_TO_PER_MILLE + 1);
                renewal_point(validity, per_mille)
                    .duration_since(now)
                    .unwrap_or(Duration::ZERO)
            }
        }
    }
}

/// NotBefore + `per_mille`/1000 of the lifetime.
pub fn renewal_point(
    (not_before, not_after): (SystemTime, SystemTime),
    per_mille: u64,
) -> SystemTime {
    let total = not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO);
    let millis = total.as_millis().saturating_mul(u128::from(per_mille)) / 1000;
    not_before + Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Pause after the `attempt`-th consecutive failure (0-based): 2, 4, 8, 16, then 32 s.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_secs(2u64 << attempt.min(4))
}

#[cfg(test)]
mod tests;

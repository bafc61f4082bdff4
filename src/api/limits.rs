//! Per-node and per-requester limits on CSR creation.
//!
//! A failing kubelet posts a new CSR about every 32 s forever (reference §4.4, §8), so:
//! - **pending cap**: at most [`LimitsConfig::max_pending_per_node`] (3) pending CSRs per node
//!   name;
//! - **node rate**: a token bucket per node name ([`LimitsConfig::node_burst`] creates, then one
//!   per [`LimitsConfig::node_interval`]);
//! - **requester rate**: a token bucket per requester (username). One bootstrap token is often
//!   shared by a whole fleet, so the default is generous: a burst of 20,000 and then 1,000/s,
//!   enough for a 10,000-node storm through one token.
//!
//! Administrators are exempt. The buckets are GCRA (one timestamp per key, exactly a token
//! bucket). Memory is bounded: at most [`LimitsConfig::max_tracked_keys`] keys per kind; when
//! full, the key whose bucket is closest to full is evicted (keys whose bucket has refilled are
//! dropped first, which changes no decision), and keys are cut to [`MAX_KEY_BYTES`].
//!
//! # How the API calls it
//! One [`Limiter`] per process, behind a `std::sync::Mutex` (never held across an `.await`).
//! On **create** only, after authentication and authorization and after the CSR is parsed
//! (so the node name is known: `system:node:<name>` CN for kubelet signers, `None` otherwise),
//! but before it is stored or signed:
//! `limiter.check_create(&CreateAttempt { requester, node, pending_for_node }, Instant::now())`,
//! where `pending_for_node` is the store's count of pending CSRs for that node name. On
//! [`Decision::Throttle`] answer 429 `TooManyRequests` with `Retry-After:
//! retry_after_secs()` and store nothing. Nothing is called when `enabled = false`.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

pub use crate::config::LimitsConfig;

/// Longest key kept, in bytes. Node names are at most 253 bytes (DNS-1123 subdomain) and
/// usernames are bounded by the authenticator; longer keys are cut (they then share a bucket).
pub const MAX_KEY_BYTES: usize = 512;

/// Who is creating the CSR. Administrators are exempt from every limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// An administrator (per `authz::is_admin`).
    Admin,
    /// Anyone else, by username (e.g. `system:bootstrap:abcdef`, `system:node:n1`).
    User(&'a str),
}

/// One create attempt, as the API sees it.
#[derive(Debug, Clone, Copy)]
pub struct CreateAttempt<'a> {
    /// Who is creating it.
    pub requester: Requester<'a>,
    /// The node name the CSR is for (from its `system:node:` CN), if any.
    pub node: Option<&'a str>,
    /// How many CSRs for this node name are pending in the store now.
    pub pending_for_node: usize,
}

/// Which limit refused a create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many pending CSRs for the node name.
    PendingPerNode,
    /// The node name's create rate.
    NodeRate,
    /// The requester's create rate.
    RequesterRate,
}

/// The outcome of [`Limiter::check_create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead (the attempt has been counted).
    Allow,
    /// Refuse with 429; nothing was counted.
    Throttle {
        /// When a retry may succeed.
        retry_after: Duration,
        /// Which limit fired (for logs and the Status message).
        limit: Limit,
    },
}

impl Decision {
    /// `Retry-After` header value: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Decision::Allow => None,
            Decision::Throttle { retry_after, .. } => {
                let up = u64::from(retry_after.subsec_nanos() > 0);
                Some(retry_after.as_secs().saturating_add(up).max(1))
            }
        }
    }
}

/// The rate and pending-cap limiter (see the module docs).
#[derive(Debug)]
pub struct Limiter {
    cfg: LimitsConfig,
    nodes: Buckets,
    requesters: Buckets,
}

impl Limiter {
    /// A limiter with no history.
    pub fn new(cfg: LimitsConfig) -> Limiter {
        let nodes = Buckets::new(cfg.node_burst, cfg.node_interval, cfg.max_tracked_keys);
        let requesters = Buckets::new(
            cfg.requester_burst,
            cfg.requester_interval,
            cfg.max_tracked_keys,
        );
        Limiter {
            cfg,
            nodes,
            requesters,
        }
    }

    /// Decides one create at `now`, and counts it if allowed.
    pub fn check_create(&mut self, attempt: &CreateAttempt<'_>, now: Instant) -> Decision {
        let Requester::User(user) = attempt.requester else {
            return Decision::Allow;
        };
        if !self.cfg.enabled {
            return Decision::Allow;
        }
        if attempt.node.is_some() && attempt.pending_for_node >= self.cfg.max_pending_per_node {
            return Decision::Throttle {
                retry_after: self.cfg.pending_retry_after,
                limit: Limit::PendingPerNode,
            };
        }
        let node = match attempt.node {
            Some(n) => match self.nodes.peek(n, now) {
                Ok(tat) => Some((n, tat)),
                Err(retry_after) => return throttle(retry_after, Limit::NodeRate),
            },
            None => None,
        };
        let user_tat = match self.requesters.peek(user, now) {
            Ok(tat) => tat,
            Err(retry_after) => return throttle(retry_after, Limit::RequesterRate),
        };
        if let Some((n, tat)) = node {
            self.nodes.commit(n, tat, now);
        }
        self.requesters.commit(user, user_tat, now);
        Decision::Allow
    }

    /// Keys tracked now (node names, requesters), for metrics and tests.
    pub fn tracked(&self) -> (usize, usize) {
        (self.nodes.len(), self.requesters.len())
    }
}

fn throttle(retry_after: Duration, limit: Limit) -> Decision {
    Decision::Throttle { retry_after, limit }
}

/// GCRA buckets keyed by name, with an index by theoretical arrival time for eviction.
#[derive(Debug)]
struct Buckets {
    /// Time to earn one token.
    interval: Duration,
    /// `interval × burst`: how far ahead of now the arrival time may run.
    tolerance: Duration,
    max_keys: usize,
    tat: HashMap<Box<[u8]>, Instant>,
    by_tat: BTreeSet<(Instant, Box<[u8]>)>,
}

impl Buckets {
    fn new(burst: u32, interval: Duration, max_keys: usize) -> Buckets {
        Buckets {
            interval,
            tolerance: interval.saturating_mul(burst),
            max_keys,
            tat: HashMap::new(),
            by_tat: BTreeSet::new(),
        }
    }

    fn len(&self) -> usize {
        self.tat.len()
    }

    /// The new arrival time if one more event is allowed at `now`, else how long to wait.
    fn peek(&self, name: &str, now: Instant) -> Result<Instant, Duration> {
        let key = key_of(name);
        let current = self.tat.get(key).copied().map_or(now, |t| t.max(now));
        let next = current.checked_add(self.interval).unwrap_or(current);
        let ahead = next.saturating_duration_since(now);
        match ahead.checked_sub(self.tolerance) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(next),
        }
    }

    /// Records the arrival time from [`Buckets::peek`], dropping refilled keys and, when full,
    /// the key closest to full.
    fn commit(&mut self, name: &str, next: Instant, now: Instant) {
        let key: Box<[u8]> = key_of(name).into();
        if let Some(old) = self.tat.remove(&key) {
            self.by_tat.remove(&(old, key.clone()));
        }
        while let Some((t, _)) = self.by_tat.first()
            && (*t <= now || self.tat.len() >= self.max_keys)
        {
            if let Some((_, k)) = self.by_tat.pop_first() {
                self.tat.remove(&k);
            }
        }
        if self.max_keys > 0 {
            self.by_tat.insert((next, key.clone()));
            self.tat.insert(key, next);
        }
    }
}

/// The bytes a name is tracked under (cut to [`MAX_KEY_BYTES`]).
fn key_of(name: &str) -> &[u8] {
    let bytes = name.as_bytes();
    bytes.get(..MAX_KEY_BYTES).unwrap_or(bytes)
}

#[cfg(test)]
mod tests;

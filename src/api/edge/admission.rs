//! Fair shares of a bounded pool of slots (requests in flight, watches): one identity holds at
//! most `per_identity` slots, non-administrators together at most `total - admin_reserved`, so
//! one caller (a bootstrap token, a node, an anonymous flood) can never take every slot and
//! administrators always get in. Slots in use are exported by class
//! (`kubesigner_slots_in_use{pool,class}`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::metrics::{SlotLabels, global};

/// Who asks, for the share and the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An administrator (`[auth] admin_groups` / `admin_users`): may use the reserved slots.
    Admin,
    /// Any other authenticated identity.
    User,
    /// No (valid) credential: one shared identity.
    Anonymous,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Admin => "admin",
            Class::User => "user",
            Class::Anonymous => "anonymous",
        }
    }
}

/// The sizes of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    /// All slots.
    pub total: usize,
    /// Most slots one identity may hold.
    pub per_identity: usize,
    /// Slots only administrators may take.
    pub admin_reserved: usize,
}

impl Shares {
    /// A pool of `total` with the given share and reservation (defaults for `None`), clamped so
    /// that one identity may hold at least one slot and non-administrators keep at least one.
    pub fn new(total: usize, per_identity: Option<usize>, admin_reserved: Option<usize>) -> Shares {
        let d = Shares::defaults(total);
        Shares {
            total,
            per_identity: per_identity
                .unwrap_or(d.per_identity)
                .clamp(1, total.max(1)),
            admin_reserved: admin_reserved
                .unwrap_or(d.admin_reserved)
                .min(total.saturating_sub(1)),
        }
    }

    /// Defaults for a pool of `total`: half of it per identity, a tenth (at least one when the
    /// pool has two or more) reserved for administrators.
    pub fn defaults(total: usize) -> Shares {
        Shares {
            total,
            per_identity: (total / 2).max(1),
            admin_reserved: if total >= 2 { (total / 10).max(1) } else { 0 },
        }
    }
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    non_admin: usize,
    by_identity: HashMap<String, usize>,
}

/// A pool of slots with per-identity shares.
#[derive(Debug, Clone)]
pub struct Pool {
    name: &'static str,
    shares: Shares,
    state: Arc<Mutex<State>>,
}

/// A held slot; released on drop.
#[derive(Debug)]
pub struct Slot {
    pool: Pool,
    class: Class,
    identity: String,
}

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The caller already holds its share.
    IdentityShare,
    /// The pool (or its non-reserved part) is full.
    Full,
}

/// The pool of API request slots (`[server] max_requests_in_flight`), also counted in
/// `kubesigner_requests_in_flight` / `_limit` (the alert rules' saturation ratio).
pub const REQUESTS: &str = "requests";

impl Pool {
    /// A pool named `name` (`requests`, `watches`: the metric's label).
    pub fn new(name: &'static str, shares: Shares) -> Pool {
        if name == REQUESTS {
            global()
                .requests_in_flight_limit
                .set(i64::try_from(shares.total).unwrap_or(i64::MAX));
        }
        Pool {
            name,
            shares,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// The sizes.
    pub fn shares(&self) -> Shares {
        self.shares
    }

    /// Takes a slot for `identity` of `class`, or says why not.
    pub fn try_acquire(&self, class: Class, identity: &str) -> Result<Slot, Refused> {
        let key = match class {
            Class::Anonymous => "",
            _ => identity,
        };
        let mut st = self.state.lock().map_err(|_| Refused::Full)?;
        if st.total >= self.shares.total {
            return Err(Refused::Full);
        }
        let held = st.by_identity.get(key).copied().unwrap_or(0);
        if class != Class::Admin {
            if held >= self.shares.per_identity {
                return Err(Refused::IdentityShare);
            }
            if st.non_admin >= self.shares.total.saturating_sub(self.shares.admin_reserved) {
                return Err(Refused::Full);
            }
            st.non_admin += 1;
        }
        st.total += 1;
        st.by_identity.insert(key.to_owned(), held + 1);
        drop(st);
        self.gauge(class).inc();
        if self.name == REQUESTS {
            global().requests_in_flight.inc();
        }
        Ok(Slot {
            pool: self.clone(),
            class,
            identity: key.to_owned(),
        })
    }

    fn gauge(
        &self,
        class: Class,
    ) -> prometheus_client::metrics::gauge::Gauge<i64, std::sync::atomic::AtomicI64> {
        global()
            .slots_in_use
            .get_or_create(&SlotLabels {
                pool: self.name,
                class: class.label(),
            })
            .clone()
    }

    /// Slots held now by `identity` (tests, diagnostics).
    pub fn held_by(&self, identity: &str) -> usize {
        self.state
            .lock()
            .map(|st| st.by_identity.get(identity).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut st) = self.pool.state.lock() {
            st.total = st.total.saturating_sub(1);
            if self.class != Class::Admin {
                st.non_admin = st.non_admin.saturating_sub(1);
            }
            if let Some(n) = st.by_identity.get_mut(&self.identity) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.by_identity.remove(&self.identity);
                }
            }
        }
        self.pool.gauge(self.class).dec();
        if self.pool.name == REQUESTS {
            global().requests_in_flight.dec();
        }
    }
}

#[cfg(test)]
mod tests;

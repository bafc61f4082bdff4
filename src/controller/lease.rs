//! The Lease I/O of leader election: read, then create or replace conditionally on the
//! resourceVersion read. Never a merge patch: a patch has no precondition, so two replicas
//! could both "win".

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;

use super::election::{Claim, Observed, Step, claimed, decide, released};

/// Why a Lease call failed (the attempt counts as a failed renewal).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The apiserver refused or could not be reached.
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The client's error.
        source: Box<kube::Error>,
    },
}

/// The outcome of one acquire-or-renew attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease; our claim is valid from `started` (taken before the read).
    Held {
        /// When the attempt started (the conservative start of the new term).
        started: Instant,
        /// We did not hold it before this write.
        transition: bool,
    },
    /// Another replica holds it.
    HeldBy {
        /// The holder.
        holder: String,
    },
    /// Another replica wrote first (409): nothing changed for us this round.
    Lost,
}

/// Settings of one elector.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// Our holder identity.
    pub identity: String,
    /// Term written into the Lease.
    pub lease_duration: Duration,
    /// Labels the Lease carries (active-active: its group), set on every write.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Acquires, renews and releases one Lease.
pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observed: Option<Observed>,
    /// The Lease as we last wrote or read it (the base of the next conditional write).
    last: Option<Lease>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How many read-then-release rounds a release tries before it leaves the Lease to expire.
const RELEASE_TRIES: usize = 3;

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl Elector {
    /// An elector over `client`.
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Elector {
        Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            last: None,
        }
    }

    /// Our identity.
    pub fn identity(&self) -> &str {
        &self.settings.identity
    }

    /// The Leases of our namespace (active-active: the members are read from them).
    pub async fn list_namespace(&self) -> Result<Vec<Lease>, LeaseError> {
        self.api
            .list(&kube::api::ListParams::default())
            .await
            .map(|l| l.items)
            .map_err(|e| self.err(e))
    }

    /// Deletes Lease `name` of our namespace if it is still at `resource_version` (a delete
    /// precondition: a Lease renewed since is left alone).
    pub async fn delete_at(&self, name: &str, resource_version: &str) -> Result<(), LeaseError> {
        let dp = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: Some(resource_version.to_owned()),
                uid: None,
            }),
            ..kube::api::DeleteParams::default()
        };
        self.api
            .delete(name, &dp)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn err(&self, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            source: Box::new(source),
        }
    }

    fn observe(&mut self, lease: &Lease) {
        self.observed = Some(Observed::update(
            self.observed.take(),
            Claim::of(lease),
            Instant::now(),
        ));
        self.last = Some(lease.clone());
    }

    /// One round: read the Lease, then create / claim / renew it if [`decide`] allows.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, LeaseError> {
        let started = Instant::now();
        let read = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(|e| self.err(e))?;
        match &read {
            Some(l) => self.observe(l),
            None => {
                self.observed = None;
                self.last = None;
            }
        }
        let s = &self.settings;
        let wall = SystemTime::now();
        let (write, transition) =
            match decide(self.observed.as_ref(), &s.identity, Instant::now(), wall) {
                Step::Wait { holder } => return Ok(Attempt::HeldBy { holder }),
                Step::Create => (None, true),
                Step::Claim { transition } => (read.as_ref(), transition),
            };
        let mut ours = claimed(
            write,
            &s.name,
            &s.namespace,
            &s.identity,
            s.lease_duration,
            wall,
        );
        if !s.labels.is_empty() {
            let labels = ours.metadata.labels.get_or_insert_with(Default::default);
            labels.extend(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let pp = PostParams::default();
        let result = match write {
            None => self.api.create(&pp, &ours).await,
            Some(_) => self.api.replace(&s.name, &pp, &ours).await,
        };
        match result {
            Ok(written) => {
                self.observe(&written);
                Ok(Attempt::Held {
                    started,
                    transition,
                })
            }
            Err(e) if is_conflict(&e) => Ok(Attempt::Lost),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Gives the Lease up (holder cleared, one-second term) if we hold it. The Lease is read
    /// again first: a renewal cancelled by the shutdown may have been written by the server
    /// after our last read, so the copy we hold can be stale (its write would conflict and the
    /// Lease would stay ours until it expires). A conflict after a fresh read means someone
    /// else moved it on meanwhile; we read again, at most [`RELEASE_TRIES`] times.
    /// True when this call released it.
    pub async fn release(&mut self) -> Result<bool, LeaseError> {
        for _ in 0..RELEASE_TRIES {
            let Some(current) = self
                .api
                .get_opt(&self.settings.name)
                .await
                .map_err(|e| self.err(e))?
            else {
                return Ok(false);
            };
            let ours = current
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.settings.identity.as_str());
            if !ours {
                return Ok(false);
            }
            let lease = released(&current, SystemTime::now());
            match self
                .api
                .replace(&self.settings.name, &PostParams::default(), &lease)
                .await
            {
                Ok(written) => {
                    self.observe(&written);
                    return Ok(true);
                }
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(self.err(e)),
            }
        }
        tracing::warn!("the lease kept changing under the release: leaving it to expire");
        Ok(false)
    }

    /// [`Elector::release`] at shutdown, within `limit` (an unreachable API server must not
    /// hold the stop: the Lease then expires by itself); says what happened, naming the Lease
    /// `what` ("lease", "member lease").
    pub async fn release_at_stop(&mut self, limit: Duration, what: &str) {
        match tokio::time::timeout(limit, self.release()).await {
            Ok(Ok(true)) => tracing::info!("{what} released"),
            Ok(Ok(false)) => tracing::info!("{what} not held: nothing to release"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the {what}"),
            Err(_) => tracing::warn!(?limit, "{what} release timed out: it expires by itself"),
        }
    }
}

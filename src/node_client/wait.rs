//! Waiting for a CSR's certificate as client-go's `WaitForCertificate` does (reference §4.3):
//! LIST with `fieldSelector=metadata.name=<name>`, then WATCH from the list's resourceVersion,
//! re-listing and re-watching (with backoff) when the stream ends, drops or expires; a
//! changed UID, `Denied`, `Failed` or deletion ends the wait; Approved with a certificate is
//! success. A progress line is logged while waiting.

use std::time::Duration;

use crate::conditions::{ConditionType, find_condition};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent;
use tokio::time::Instant;

use super::client::{ApiClient, ClientError};
use super::name::CsrName;

/// How often the progress line is written while waiting.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// Watch `timeoutSeconds` range, as client-go's reflector (random 300–599 s).
const WATCH_SECONDS: std::ops::Range<u64> = 300..600;
/// First and longest pause between attempts after an error.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why a wait ended without a certificate.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// An approver denied the request.
    #[error("certificate signing request {name} was denied: {reason}: {message}")]
    Denied {
        /// CSR name.
        name: String,
        /// Condition reason.
        reason: String,
        /// Condition message.
        message: String,
    },
    /// The signer refused the request.
    #[error("certificate signing request {name} failed: {reason}: {message}")]
    Failed {
        /// CSR name.
        name: String,
        /// Condition reason.
        reason: String,
        /// Condition message.
        message: String,
    },
    /// The CSR was deleted while waiting.
    #[error("certificate signing request {name} was deleted")]
    Deleted {
        /// CSR name.
        name: String,
    },
    /// A different object now has the name.
    #[error("certificate signing request {name} changed UIDs")]
    UidChanged {
        /// CSR name.
        name: String,
    },
    /// No certificate in time.
    #[error(
        "timed out after {waited:?} waiting for certificate signing request {name} to be approved and issued"
    )]
    Timeout {
        /// CSR name.
        name: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The server refuses this credential (expired token, revoked certificate, no access).
    #[error("the server refuses this node's credential: {0}")]
    Refused(ClientError),
}

/// Whether a client error is final (authentication or authorization refused).
pub fn is_refusal(e: &ClientError) -> bool {
    matches!(e.code(), Some(401 | 403))
}

/// The outcome of looking at one version of the CSR.
enum Seen {
    Pending,
    Issued(String),
}

fn inspect(
    csr: &CertificateSigningRequest,
    name: &CsrName,
    uid: &mut Option<String>,
) -> Result<Seen, WaitError> {
    let this_uid = csr.metadata.uid.clone();
    match (uid.as_ref(), this_uid) {
        (Some(known), Some(now)) if *known != now => {
            return Err(WaitError::UidChanged {
                name: name.to_string(),
            });
        }
        (None, Some(now)) => *uid = Some(now),
        _ => {}
    }
    let terminal = |c: &k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition| {
        (
            name.to_string(),
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        )
    };
    if let Some(c) = find_condition(csr, ConditionType::Denied) {
        let (name, reason, message) = terminal(c);
        return Err(WaitError::Denied {
            name,
            reason,
            message,
        });
    }
    if let Some(c) = find_condition(csr, ConditionType::Failed) {
        let (name, reason, message) = terminal(c);
        return Err(WaitError::Failed {
            name,
            reason,
            message,
        });
    }
    let cert = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .filter(|c| !c.0.is_empty());
    match (find_condition(csr, ConditionType::Approved), cert) {
        (Some(_), Some(cert)) => Ok(Seen::Issued(String::from_utf8_lossy(&cert.0).into_owned())),
        _ => Ok(Seen::Pending),
    }
}

/// A uniformly random value in `range` (for jitter), from the system CSPRNG.
pub fn random_in(range: std::ops::Range<u64>) -> u64 {
    let mut b = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut b);
    let span = range.end.saturating_sub(range.start).max(1);
    range.start + u64::from_le_bytes(b) % span
}

struct Waiter<'a> {
    client: &'a ApiClient,
    name: &'a CsrName,
    uid: Option<String>,
    started: Instant,
    deadline: Instant,
    next_progress: Instant,
    backoff: Duration,
}

/// Waits until `name` is approved and issued; returns the PEM `status.certificate`.
/// `uid` is the UID the create (or the reused CSR) returned.
pub async fn wait_for_certificate(
    client: &ApiClient,
    name: &CsrName,
    uid: Option<String>,
    timeout: Duration,
) -> Result<String, WaitError> {
    let started = Instant::now();
    let mut w = Waiter {
        client,
        name,
        uid,
        started,
        deadline: started + timeout,
        next_progress: started,
        backoff: BACKOFF_FIRST,
    };
    loop {
        w.progress();
        if Instant::now() >= w.deadline {
            return Err(w.timeout());
        }
        match w.list_then_watch().await {
            Ok(Some(cert)) => return Ok(cert),
            Ok(None) => {}
            Err(Step::Fatal(e)) => return Err(e),
            Err(Step::Retry(e)) => {
                tracing::warn!(csr = %name, error = %e, retry_in = ?w.backoff, "waiting for certificate: retrying");
                w.pause().await;
            }
        }
    }
}

enum Step {
    Fatal(WaitError),
    Retry(ClientError),
}

impl Waiter<'_> {
    fn timeout(&self) -> WaitError {
        WaitError::Timeout {
            name: self.name.to_string(),
            waited: self.started.elapsed(),
        }
    }

    fn progress(&mut self) {
        if Instant::now() >= self.next_progress {
            tracing::info!(
                csr = %self.name,
                waited_s = self.started.elapsed().as_secs(),
                "waiting for the certificate signing request to be approved and issued"
            );
            self.next_progress = Instant::now() + PROGRESS_EVERY;
        }
    }

    async fn pause(&mut self) {
        let pause = self
            .backoff
            .min(self.deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn classify(e: ClientError) -> Step {
        if is_refusal(&e) {
            Step::Fatal(WaitError::Refused(e))
        } else {
            Step::Retry(e)
        }
    }

    /// One LIST and one WATCH. `Ok(None)`: the stream ended, list again.
    async fn list_then_watch(&mut self) -> Result<Option<String>, Step> {
        let (items, mut rv) = self
            .client
            .list_csr(self.name)
            .await
            .map_err(Self::classify)?;
        let mine = items
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(self.name.as_str()));
        if let Some(csr) = mine
            && let Seen::Issued(cert) =
                inspect(csr, self.name, &mut self.uid).map_err(Step::Fatal)?
        {
            return Ok(Some(cert));
        }
        let secs = random_in(WATCH_SECONDS);
        let mut stream = self
            .client
            .watch_csr(self.name, &rv, Duration::from_secs(secs))
            .await
            .map_err(Self::classify)?;
        self.backoff = BACKOFF_FIRST;
        loop {
            let until_progress = self.next_progress.saturating_duration_since(Instant::now());
            let until_deadline = self.deadline.saturating_duration_since(Instant::now());
            let event = tokio::select! {
                e = stream.next_event() => e,
                _ = tokio::time::sleep(until_progress) => { self.progress(); continue; }
                _ = tokio::time::sleep(until_deadline) => return Err(Step::Fatal(self.timeout())),
            };
            match event.map_err(Self::classify)? {
                None => return Ok(None),
                Some(WatchEvent::Added(csr) | WatchEvent::Modified(csr)) => {
                    if let Seen::Issued(cert) =
                        inspect(&csr, self.name, &mut self.uid).map_err(Step::Fatal)?
                    {
                        return Ok(Some(cert));
                    }
                }
                Some(WatchEvent::Deleted(_)) => {
                    return Err(Step::Fatal(WaitError::Deleted {
                        name: self.name.to_string(),
                    }));
                }
                Some(WatchEvent::Bookmark {
                    resource_version, ..
                }) => rv = resource_version,
                Some(WatchEvent::ErrorStatus(s)) => {
                    tracing::info!(csr = %self.name, code = ?s.code, reason = ?s.reason, resource_version = %rv, "watch ended by the server; listing again");
                    return Ok(None);
                }
                Some(WatchEvent::ErrorOther(_)) => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Signed checkpoints: every `checkpoint_every` records or `checkpoint_interval` (whichever
//! comes first, once something new was recorded) the head's seq and hash are signed with the
//! audit key in the token (`[audit] key_label`, ECDSA P-256, through the signer's session pool),
//! appended to the chain as a `checkpoint` record, and written to stderr (journald under
//! systemd) as one line:
//!
//! `kubesigner-audit-checkpoint seq=S hash=H at=T sig=HEX`
//!
//! `kubesigner audit verify --checkpoints LOG` finds these lines in the system log and checks
//! that each is in the export, so a cut-off tail shows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::{AuditRecord, Checkpoint, Entry, MAX_LINE, checkpoint_message};
use crate::config::AuditConfig;
use crate::signer::{SignerError, TokenSigner};
use crate::store::{Store, StoreError};

/// The marker that starts a checkpoint line in the system log.
pub const LOG_MARKER: &str = "kubesigner-audit-checkpoint";
/// How often the checkpointer looks at the head (bounds how far past `checkpoint_every` the
/// chain may run before its checkpoint).
const POLL: Duration = Duration::from_secs(1);

/// A checkpoint as written to the system log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCheckpoint {
    /// The seq covered.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// When it was signed (Unix seconds).
    pub at_unix: i64,
    /// The signature (DER, hex).
    pub sig: String,
}

impl LoggedCheckpoint {
    /// The system-log line.
    pub fn line(&self) -> String {
        format!(
            "{LOG_MARKER} seq={} hash={} at={} sig={}",
            self.seq, self.hash, self.at_unix, self.sig
        )
    }
}

fn field<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    let start = rest.find(&format!(" {key}="))? + key.len() + 2;
    let tail = rest.get(start..)?;
    let end = tail
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(tail.len());
    tail.get(..end)
}

/// Parses one system-log line (text or JSON logs, journal output): `None` unless it carries a
/// complete checkpoint.
pub fn parse_line(line: &str) -> Option<LoggedCheckpoint> {
    if line.len() > MAX_LINE {
        return None;
    }
    let rest = line.get(line.find(LOG_MARKER)? + LOG_MARKER.len()..)?;
    Some(LoggedCheckpoint {
        seq: field(rest, "seq")?.parse().ok()?,
        hash: field(rest, "hash")?.to_owned(),
        at_unix: field(rest, "at")?.parse().ok()?,
        sig: field(rest, "sig")?.to_owned(),
    })
}

/// Every checkpoint line in a system-log extract.
pub fn parse_log(text: &str) -> Vec<LoggedCheckpoint> {
    text.lines().filter_map(parse_line).collect()
}

/// Why a checkpoint could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading the head or appending the record failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The audit key could not sign (missing key, token down).
    #[error("audit key: {0}")]
    Signer(#[from] SignerError),
    /// The audit key is not ECDSA P-256.
    #[error("the audit key is {found}, not ECDSA P-256")]
    WrongKey {
        /// The key's algorithm.
        found: &'static str,
    },
}

/// Signs the current head and appends the checkpoint (blocking). `None` when nothing was
/// recorded since the last checkpoint.
pub fn take(
    store: &Store,
    signer: &TokenSigner,
    label: &str,
) -> Result<Option<AuditRecord>, CheckpointError> {
    let Some((head_seq, head_hash)) = store.audit_head()? else {
        return Ok(None);
    };
    if store
        .audit_last_checkpoint()?
        .is_some_and(|(own, _)| own >= head_seq)
    {
        return Ok(None);
    }
    let at_unix = crate::clock::unix_now();
    let msg = checkpoint_message(head_seq, &head_hash, at_unix);
    let (sig, public) = signer.sign_with_label(label, msg.as_bytes())?;
    if public.algorithm != crate::signer::Algorithm::EcdsaP256 {
        return Err(CheckpointError::WrongKey {
            found: public.algorithm.name(),
        });
    }
    let cp = Checkpoint {
        seq: head_seq,
        hash: head_hash,
        sig: hex::encode(sig),
    };
    let logged = LoggedCheckpoint {
        seq: cp.seq,
        hash: cp.hash.clone(),
        at_unix,
        sig: cp.sig.clone(),
    };
    let rec = store.append_audit(&Entry {
        name: "",
        actor: "kubesigner",
        at_unix: Some(at_unix),
        checkpoint: Some(cp),
        ..Entry::new(super::Kind::Checkpoint)
    })?;
    // The outside copy: one line on stderr (journald under systemd), whatever the log format.
    eprintln!("{}", logged.line());
    Ok(Some(rec))
}

/// The running checkpointer.
#[derive(Debug)]
pub struct Checkpointer {
    task: JoinHandle<()>,
    store: Store,
    signer: Arc<TokenSigner>,
    label: String,
}

impl Checkpointer {
    /// Stops the timer and signs a last checkpoint of everything recorded (an orderly stop
    /// leaves no unsigned tail).
    pub async fn finish(self) {
        self.task.abort();
        let Checkpointer {
            store,
            signer,
            label,
            ..
        } = self;
        match tokio::task::spawn_blocking(move || take(&store, &signer, &label)).await {
            Ok(Ok(Some(r))) => tracing::info!(seq = r.seq, "final audit checkpoint signed"),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "final audit checkpoint failed"),
            Err(e) => tracing::warn!(error = %e, "final audit checkpoint task failed"),
        }
    }
}

/// Runs the checkpointer until [`Checkpointer::finish`].
pub fn spawn(store: Store, signer: Arc<TokenSigner>, cfg: AuditConfig) -> Checkpointer {
    let label = cfg.key_label.clone();
    let task = spawn_task(store.clone(), Arc::clone(&signer), cfg);
    Checkpointer {
        task,
        store,
        signer,
        label,
    }
}

fn spawn_task(store: Store, signer: Arc<TokenSigner>, cfg: AuditConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        let mut last = Instant::now();
        let mut warned = false;
        let metrics = crate::metrics::global();
        metrics.audit_checkpoint_ok.set(crate::clock::unix_now());
        metrics
            .audit_checkpoint_interval
            .set(i64::try_from(cfg.checkpoint_interval.as_secs()).unwrap_or(i64::MAX));
        loop {
            tick.tick().await;
            let (s, sg, label) = (store.clone(), Arc::clone(&signer), cfg.key_label.clone());
            let every = cfg.checkpoint_every;
            let due_by_time =
                !cfg.checkpoint_interval.is_zero() && last.elapsed() >= cfg.checkpoint_interval;
            let taken = tokio::task::spawn_blocking(move || {
                let due_by_count = every > 0
                    && s.audit_head()?.is_some_and(|(head, _)| {
                        let covered = s
                            .audit_last_checkpoint()
                            .ok()
                            .flatten()
                            .map_or(0, |(_, c)| c);
                        head.saturating_sub(covered) > every
                    });
                if due_by_time || due_by_count {
                    take(&s, &sg, &label).map(|r| (true, r))
                } else {
                    Ok((false, None))
                }
            })
            .await;
            match taken {
                Ok(Ok((tried, rec))) => {
                    if tried {
                        last = Instant::now();
                        // Signed now, or nothing new since the last checkpoint: covered.
                        metrics.audit_checkpoint_ok.set(crate::clock::unix_now());
                    }
                    if let Some(r) = rec {
                        crate::metrics::global().audit_checkpoints.inc();
                        tracing::info!(seq = r.seq, "audit checkpoint signed");
                        warned = false;
                    }
                }
                Ok(Err(e)) if !warned => {
                    warned = true;
                    tracing::warn!(error = %e, "audit checkpoint failed (retrying)");
                }
                Ok(Err(_)) => {}
                Err(e) => tracing::warn!(error = %e, "audit checkpoint task failed"),
            }
        }
    })
}

/// Generates the audit key (ECDSA P-256, label `label`, fresh CKA_ID) in the token of the CA
/// key `ca_uri`, as `ca init`, `dev` and `hsm keygen --audit` do. `None` when a key with that
/// label exists already.
pub fn keygen(
    ca_uri: &crate::signer::Pkcs11Uri,
    label: &str,
) -> Result<Option<crate::signer::PublicKey>, SignerError> {
    let mut uri = ca_uri.clone();
    uri.id = None;
    uri.object = Some(label.to_owned());
    match crate::signer::keygen(
        &uri,
        crate::signer::Algorithm::EcdsaP256,
        None,
        Some(label.to_owned()),
    ) {
        Ok(k) => Ok(Some(k.public)),
        Err(SignerError::KeyExists { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The audit public key of an open token (found by label; proven by a test signature).
pub fn public_key(
    signer: &TokenSigner,
    label: &str,
) -> Result<crate::signer::PublicKey, SignerError> {
    signer
        .sign_with_label(label, b"kubesigner audit key probe")
        .map(|(_, public)| public)
}

#[cfg(test)]
mod tests;

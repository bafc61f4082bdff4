//! `kubesigner audit verify`: the chain alone (edits, deletions, reorders), and with the audit
//! public key and the system log's checkpoint lines also the checkpoint signatures and a
//! truncated tail.

use super::checkpoint::LoggedCheckpoint;
use super::{AuditRecord, GENESIS, MAX_LINE, checkpoint_message, record_hash};
use crate::signer::PublicKey;

/// Why an export does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// A line is not a record.
    #[error("line {line}: not an audit record")]
    Malformed {
        /// 1-based line.
        line: usize,
    },
    /// A record's content does not match its hash (edited).
    #[error("record {seq}: content does not match its hash (edited)")]
    Edited {
        /// The record's seq.
        seq: u64,
    },
    /// The sequence skips or goes back (deleted or reordered records).
    #[error("record at line {line}: seq {found}, expected {expected} (deleted or reordered)")]
    Sequence {
        /// 1-based line.
        line: usize,
        /// The seq found.
        found: u64,
        /// The seq expected.
        expected: u64,
    },
    /// `prev_hash` does not name the previous record (a record was removed or replaced).
    #[error("record {seq}: prev_hash does not match the previous record")]
    Broken {
        /// The record's seq.
        seq: u64,
    },
    /// The export ends before the head the system log recorded (truncated).
    #[error("the export ends at {last}, but the expected head is not in it (truncated)")]
    Truncated {
        /// The last hash in the export.
        last: String,
    },
    /// A checkpoint record names a seq/hash that is not the chain's (or not before it).
    #[error("checkpoint record {seq}: covers seq {covers} with a hash the chain does not have")]
    CheckpointMismatch {
        /// The checkpoint record's seq.
        seq: u64,
        /// The seq it claims to cover.
        covers: u64,
    },
    /// A checkpoint's signature does not verify with the audit key (forged or re-written).
    #[error("checkpoint record {seq}: signature does not verify with the audit key")]
    BadSignature {
        /// The checkpoint record's seq.
        seq: u64,
    },
    /// A checkpoint from the system log is not in the export (the tail was cut off).
    #[error(
        "the system log has a checkpoint of seq {covers} ({hash}) that the export lacks (truncated)"
    )]
    MissingCheckpoint {
        /// The seq the logged checkpoint covers.
        covers: u64,
        /// The hash it names.
        hash: String,
    },
    /// More appliance records between two checkpoints (or after the last one) than the
    /// configured cadence allows: a checkpoint was removed (with records, the chain re-hashed),
    /// or checkpoints failed for that long (the service log says why).
    #[error(
        "records {from} to {to} lack a checkpoint: {counted} records between checkpoints, at most \
         {allowed} allowed ([audit] checkpoint_every + checkpoint_slack); a checkpoint was \
         removed, or checkpoints failed for that long"
    )]
    CadenceBroken {
        /// First record of the stretch.
        from: u64,
        /// Last record of the stretch.
        to: u64,
        /// Records counted (local-command records excepted).
        counted: u64,
        /// The most allowed.
        allowed: u64,
    },
    /// A checkpoint line in the system log does not verify with the audit key.
    #[error("the system log's checkpoint of seq {covers} does not verify with the audit key")]
    BadLogSignature {
        /// The seq the logged checkpoint covers.
        covers: u64,
    },
}

/// What a verification checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records in the chain.
    pub records: u64,
    /// Checkpoint records found (each covers an earlier hash of the chain).
    pub checkpoints: u64,
    /// Checkpoint signatures verified with the audit key.
    pub signatures: u64,
    /// System-log checkpoints found in the export.
    pub logged: u64,
}

/// The extra inputs of a full verification.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The newest `head=` from the system log: the export must reach it.
    pub head: Option<&'a str>,
    /// The audit public key: every checkpoint signature must verify.
    pub key: Option<&'a PublicKey>,
    /// Checkpoint lines from the system log: each must be in the export.
    pub logged: &'a [LoggedCheckpoint],
    /// The checkpoint cadence (`[audit]`), checked when the audit key is known.
    pub cadence: Option<Cadence>,
}

/// The most records the appliance may append between two checkpoints: `checkpoint_every` plus
/// a slack for what is appended while a due checkpoint waits for the checkpointer (it looks
/// once a second). Records of local commands (actor `kubesigner-cli`, e.g. `token create`
/// while the service is stopped) are not counted: no checkpointer runs with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// `[audit] checkpoint_every` (0: no count cadence, nothing checked).
    pub every: u64,
    /// `[audit] checkpoint_slack`.
    pub slack: u64,
}

impl From<&crate::config::AuditConfig> for Cadence {
    fn from(c: &crate::config::AuditConfig) -> Cadence {
        Cadence {
            every: c.checkpoint_every,
            slack: c.slack(),
        }
    }
}

/// The actor of records written by local commands.
const CLI_ACTOR: &str = "kubesigner-cli";

fn check_cadence(chain: &[AuditRecord], cadence: Cadence) -> Result<(), AuditError> {
    if cadence.every == 0 {
        return Ok(());
    }
    let allowed = cadence.every.saturating_add(cadence.slack);
    let stretch = |from: usize, to: usize| -> Result<(), AuditError> {
        let part = chain.get(from..to).unwrap_or_default();
        let counted = part.iter().filter(|r| r.actor != CLI_ACTOR).count();
        let counted = u64::try_from(counted).unwrap_or(u64::MAX);
        match (part.first(), part.last()) {
            (Some(first), Some(last)) if counted > allowed => Err(AuditError::CadenceBroken {
                from: first.seq,
                to: last.seq,
                counted,
                allowed,
            }),
            _ => Ok(()),
        }
    };
    let mut covered = 0usize;
    for r in chain {
        if let Some(cp) = &r.checkpoint {
            let upto = usize::try_from(cp.seq).unwrap_or(usize::MAX);
            stretch(covered, upto)?;
            covered = covered.max(upto);
        }
    }
    stretch(covered, chain.len())
}

/// Verifies an export (JSON lines); with `head`, also that the chain reaches that hash.
/// Returns the number of records.
pub fn verify(text: &str, head: Option<&str>) -> Result<u64, AuditError> {
    verify_with(
        text,
        &VerifyOptions {
            head,
            ..VerifyOptions::default()
        },
    )
    .map(|s| s.records)
}

fn parse_chain(text: &str) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out: Vec<AuditRecord> = Vec::new();
    let mut prev = GENESIS.to_owned();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = i + 1;
        if line.len() > MAX_LINE {
            return Err(AuditError::Malformed { line: line_no });
        }
        let r: AuditRecord =
            serde_json::from_str(line).map_err(|_| AuditError::Malformed { line: line_no })?;
        let expected = u64::try_from(out.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        if r.seq != expected {
            return Err(AuditError::Sequence {
                line: line_no,
                found: r.seq,
                expected,
            });
        }
        if record_hash(&r) != r.hash {
            return Err(AuditError::Edited { seq: r.seq });
        }
        if r.prev_hash != prev {
            return Err(AuditError::Broken { seq: r.seq });
        }
        prev.clone_from(&r.hash);
        out.push(r);
    }
    Ok(out)
}

fn hash_at(chain: &[AuditRecord], seq: u64) -> Option<&str> {
    let i = usize::try_from(seq.checked_sub(1)?).ok()?;
    chain.get(i).map(|r| r.hash.as_str())
}

fn check_checkpoints(
    chain: &[AuditRecord],
    key: Option<&PublicKey>,
    summary: &mut Summary,
) -> Result<(), AuditError> {
    for r in chain {
        let Some(cp) = &r.checkpoint else { continue };
        let mismatch = AuditError::CheckpointMismatch {
            seq: r.seq,
            covers: cp.seq,
        };
        if cp.seq >= r.seq || hash_at(chain, cp.seq) != Some(cp.hash.as_str()) {
            return Err(mismatch);
        }
        summary.checkpoints += 1;
        if let Some(key) = key {
            let sig = hex::decode(&cp.sig).map_err(|_| AuditError::BadSignature { seq: r.seq })?;
            key.verify(
                checkpoint_message(cp.seq, &cp.hash, r.at_unix).as_bytes(),
                &sig,
            )
            .map_err(|_| AuditError::BadSignature { seq: r.seq })?;
            summary.signatures += 1;
        }
    }
    Ok(())
}

fn check_logged(
    chain: &[AuditRecord],
    opts: &VerifyOptions<'_>,
    summary: &mut Summary,
) -> Result<(), AuditError> {
    for l in opts.logged {
        if let Some(key) = opts.key {
            let sig =
                hex::decode(&l.sig).map_err(|_| AuditError::BadLogSignature { covers: l.seq })?;
            key.verify(
                checkpoint_message(l.seq, &l.hash, l.at_unix).as_bytes(),
                &sig,
            )
            .map_err(|_| AuditError::BadLogSignature { covers: l.seq })?;
        }
        let found = chain.iter().any(|r| {
            r.at_unix == l.at_unix
                && r.checkpoint
                    .as_ref()
                    .is_some_and(|c| c.seq == l.seq && c.hash == l.hash && c.sig == l.sig)
        });
        if !found {
            return Err(AuditError::MissingCheckpoint {
                covers: l.seq,
                hash: l.hash.clone(),
            });
        }
        summary.logged += 1;
    }
    Ok(())
}

/// Verifies an export: the chain, every checkpoint record (it covers an earlier hash of the
/// chain; with a key, its signature verifies), every logged checkpoint (it is in the export),
/// and the logged head.
pub fn verify_with(text: &str, opts: &VerifyOptions<'_>) -> Result<Summary, AuditError> {
    let chain = parse_chain(text)?;
    let mut summary = Summary {
        records: u64::try_from(chain.len()).unwrap_or(u64::MAX),
        ..Summary::default()
    };
    check_checkpoints(&chain, opts.key, &mut summary)?;
    if let (Some(cadence), Some(_)) = (opts.cadence, opts.key) {
        check_cadence(&chain, cadence)?;
    }
    check_logged(&chain, opts, &mut summary)?;
    if let Some(head) = opts.head
        && !chain.iter().any(|r| r.hash == head)
    {
        return Err(AuditError::Truncated {
            last: chain
                .last()
                .map_or_else(|| GENESIS.to_owned(), |r| r.hash.clone()),
        });
    }
    Ok(summary)
}

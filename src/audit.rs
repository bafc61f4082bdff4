//! The tamper-evident audit chain: each record carries the SHA-256 of the previous record, so an
//! edit, a deletion or a reorder breaks the chain, and a missing tail shows against the head
//! hash logged to the system log with every record (the outside copy).
//!
//! The store writes the records (same transaction as the change, `store::Store`); this module
//! holds the record format, the hash and the verifier used by `kubesigner audit verify`.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Largest export line accepted by the verifier (a record is a few hundred bytes).
pub const MAX_LINE: usize = 64 * 1024;

/// One audit record, as stored and exported (one JSON line each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When (Unix seconds).
    pub at_unix: i64,
    /// What: create, approve, deny, issue, fail, delete, update.
    pub kind: String,
    /// The CSR.
    pub csr_name: String,
    /// Who.
    pub actor: String,
    /// The resourceVersion of the change.
    pub resource_version: u64,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of this record's other fields, see [`record_hash`].
    pub hash: String,
    /// `certificate_written` records (external-signing mode): the leaf's serial, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_serial: Option<String>,
    /// `certificate_written` records: SHA-256 (hex) of the leaf's DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_sha256: Option<String>,
}

/// The hash of a record: SHA-256 over the JSON of every field but `hash`, in declared order
/// (the optional certificate fields only when present, so older records hash as before).
pub fn record_hash(r: &AuditRecord) -> String {
    let mut body = serde_json::json!([
        r.seq,
        r.at_unix,
        r.kind,
        r.csr_name,
        r.actor,
        r.resource_version,
        r.prev_hash
    ]);
    if let (Some(list), true) = (
        body.as_array_mut(),
        r.certificate_serial.is_some() || r.certificate_sha256.is_some(),
    ) {
        list.push(serde_json::json!(r.certificate_serial));
        list.push(serde_json::json!(r.certificate_sha256));
    }
    hex::encode(digest::digest(&digest::SHA256, body.to_string().as_bytes()))
}

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
}

/// Verifies an export (JSON lines); with `head`, also that the chain reaches that hash (from
/// the system log). Returns the number of records.
pub fn verify(text: &str, head: Option<&str>) -> Result<u64, AuditError> {
    let mut prev = GENESIS.to_owned();
    let mut expected = 1u64;
    let mut seen_head = head.is_none();
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
        seen_head |= head == Some(r.hash.as_str());
        prev = r.hash;
        expected = expected.saturating_add(1);
    }
    if !seen_head {
        return Err(AuditError::Truncated { last: prev });
    }
    Ok(expected.saturating_sub(1))
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;

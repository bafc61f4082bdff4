//! The tamper-evident audit chain: each record carries the SHA-256 of the previous record, so an
//! edit, a deletion or a reorder breaks the chain. Every N records or T seconds a checkpoint
//! record (the head's seq and hash, signed with the audit key in the token) joins the chain and
//! is also written to the system log ([`checkpoint`]): the outside copy that makes a truncated
//! tail visible.
//!
//! The store writes the records (same transaction as the change, [`append()`]); this module holds
//! the record format, the hash and the verifier used by `kubesigner audit verify`.

mod append;
pub mod checkpoint;
pub mod context;
mod kind;
pub mod signature;
mod verify;

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

pub use append::{Entry, all, append, append_steps, head, last_checkpoint, serial_of};
pub use kind::Kind;
pub use verify::{AuditError, Cadence, Summary, VerifyOptions, verify, verify_with};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Largest export line accepted by the verifier (a record is a few hundred bytes; a CSR may
/// name up to 100 SANs of up to 253 bytes, `issue::csr::MAX_SANS`).
pub const MAX_LINE: usize = 64 * 1024;

/// One audit record, as stored and exported (one JSON line each). The fields after
/// `prev_hash` were added later: a record without any of them hashes as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// When (Unix seconds).
    pub at_unix: i64,
    /// What happened.
    pub kind: Kind,
    /// The subject of the change: the CSR (or the node, or the bootstrap token id).
    pub csr_name: String,
    /// Who (user name; `kubesigner` for the appliance, `kubesigner-cli` for local commands).
    pub actor: String,
    /// The resourceVersion of the change.
    pub resource_version: u64,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// The actor's groups (API requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// The request id (`X-Request-Id`) of the API request that made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The requested subject (RFC 4514), on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The requested SANs (`DNS:…`, `IP:…`), on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sans: Option<Vec<String>>,
    /// Serial number (hex) of the certificate issued by this change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Outcome: the CSR's phase after the change (pending, approved, denied, failed, issued,
    /// deleted), or what a node / token change did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// On `checkpoint` records: what was signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// SHA-256 (hex) of this record's other fields, see [`record_hash`].
    pub hash: String,
    /// `certificate_written` records (external-signing mode): the leaf's serial, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_serial: Option<String>,
    /// `certificate_written` records: SHA-256 (hex) of the leaf's DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_sha256: Option<String>,
}

/// A signed checkpoint: the chain up to `seq` ends in `hash`, at the record's `at_unix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The seq of the newest record covered.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// ECDSA P-256 / SHA-256 signature (DER, hex) over [`checkpoint_message`].
    pub sig: String,
}

/// The bytes the audit key signs for a checkpoint.
pub fn checkpoint_message(seq: u64, hash: &str, at_unix: i64) -> String {
    format!("kubesigner-audit-checkpoint v1 seq={seq} hash={hash} at={at_unix}")
}

impl AuditRecord {
    /// A record with the original fields only (the added ones empty); `hash` empty.
    pub fn new(seq: u64, at_unix: i64, kind: Kind, csr_name: &str, actor: &str) -> AuditRecord {
        AuditRecord {
            seq,
            at_unix,
            kind,
            csr_name: csr_name.to_owned(),
            actor: actor.to_owned(),
            resource_version: 0,
            prev_hash: GENESIS.to_owned(),
            groups: None,
            request_id: None,
            subject: None,
            sans: None,
            serial: None,
            outcome: None,
            checkpoint: None,
            hash: String::new(),
            certificate_serial: None,
            certificate_sha256: None,
        }
    }

    fn has_added_fields(&self) -> bool {
        self.groups.is_some()
            || self.request_id.is_some()
            || self.subject.is_some()
            || self.sans.is_some()
            || self.serial.is_some()
            || self.outcome.is_some()
            || self.checkpoint.is_some()
    }
}

/// The hash of a record: SHA-256 over the JSON array of the original fields in declared order;
/// then the two certificate fields (external signing) when either is set; then the added
/// fields as one more element when one is set — so records written before they existed keep
/// their hash.
///
/// The array is written element by element in compact form, exactly as `serde_json::Value`
/// prints it (the checkpoint, an object, goes through a `Value` so its keys stay sorted);
/// `tests::hash_text_equals_the_value_form` holds the two to the same bytes.
pub fn record_hash(r: &AuditRecord) -> String {
    hex::encode(digest::digest(&digest::SHA256, &hashed_text(r)))
}

/// The text [`record_hash`] digests.
fn hashed_text(r: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    element(&mut out, &r.seq);
    element(&mut out, &r.at_unix);
    element(&mut out, &r.kind);
    element(&mut out, &r.csr_name);
    element(&mut out, &r.actor);
    element(&mut out, &r.resource_version);
    element(&mut out, &r.prev_hash);
    if r.certificate_serial.is_some() || r.certificate_sha256.is_some() {
        element(&mut out, &r.certificate_serial);
        element(&mut out, &r.certificate_sha256);
    }
    if r.has_added_fields() {
        let checkpoint = r
            .checkpoint
            .as_ref()
            .map(|c| serde_json::to_value(c).unwrap_or(serde_json::Value::Null));
        let added = (
            &r.groups,
            &r.request_id,
            &r.subject,
            &r.sans,
            &r.serial,
            &r.outcome,
            checkpoint,
        );
        element(&mut out, &added);
    }
    out.push(b']');
    out
}

/// Appends one element of the array [`hashed_text`] writes (after `[`), compactly.
fn element<T: Serialize>(out: &mut Vec<u8>, v: &T) {
    if out.len() > 1 {
        out.push(b',');
    }
    // Writing into a Vec cannot fail, and these types always serialize.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests;

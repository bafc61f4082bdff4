//! What an audit record records: one closed set of kinds, written and read as the same strings
//! (the hash covers the string, so the names never change).

use serde::{Deserialize, Serialize};

/// The kind of an audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A CSR was created.
    Create,
    /// A CSR was approved.
    Approve,
    /// A CSR was denied.
    Deny,
    /// A certificate was issued for a CSR (one CA-key signature).
    Issue,
    /// A CSR got the `Failed` condition.
    Fail,
    /// A CSR was deleted (by a user or by GC).
    Delete,
    /// A CSR's object was updated (labels, annotations) without a decision.
    Update,
    /// A write to a CSR's `/approval` that added neither Approved nor Denied.
    Approval,
    /// A write to a CSR's `/status` (external-signing mode: the controller's certificate).
    Status,
    /// External-signing mode: a controller's certificate was written through `/status` (its
    /// serial and SHA-256 are in the record).
    #[serde(rename = "certificate_written")]
    CertificateWritten,
    /// Controller mode: the signed certificate was written to the API.
    #[serde(rename = "status_written")]
    StatusWritten,
    /// A node was disabled (`kubesigner node disable`).
    NodeDisable,
    /// A node was enabled again.
    NodeEnable,
    /// A node's first bootstrap address was recorded (trust on first use).
    NodeFirstAddress,
    /// A bootstrap token was created.
    TokenCreate,
    /// A bootstrap token was deleted.
    TokenDelete,
    /// A signed checkpoint of the chain.
    Checkpoint,
    /// Controller mode: a certificate was signed, recorded before it is written to the API.
    #[serde(rename = "signature_spent")]
    SignatureSpent,
    /// Controller mode: a signature recorded as spent was never written to the API (another
    /// writer won: a certificate or, active-active, a later claim was there first; or the
    /// signing window closed). Same serial and SHA-256 as its `signature_spent` record.
    #[serde(rename = "signature_discarded")]
    SignatureDiscarded,
    /// The appliance's serving certificate was signed.
    ServingCertificate,
    /// An administrator client certificate was signed (`kubesigner dev`).
    AdminCertificate,
    /// The CA certificate was self-signed with the token key (`kubesigner dev`).
    CaSelfSigned,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 22] = [
        Kind::Create,
        Kind::Approve,
        Kind::Deny,
        Kind::Issue,
        Kind::Fail,
        Kind::Delete,
        Kind::Update,
        Kind::Approval,
        Kind::Status,
        Kind::CertificateWritten,
        Kind::StatusWritten,
        Kind::NodeDisable,
        Kind::NodeEnable,
        Kind::NodeFirstAddress,
        Kind::TokenCreate,
        Kind::TokenDelete,
        Kind::Checkpoint,
        Kind::SignatureSpent,
        Kind::SignatureDiscarded,
        Kind::ServingCertificate,
        Kind::AdminCertificate,
        Kind::CaSelfSigned,
    ];

    /// The name written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Approve => "approve",
            Kind::Deny => "deny",
            Kind::Issue => "issue",
            Kind::Fail => "fail",
            Kind::Delete => "delete",
            Kind::Update => "update",
            Kind::Approval => "approval",
            Kind::Status => "status",
            Kind::CertificateWritten => "certificate_written",
            Kind::StatusWritten => "status_written",
            Kind::NodeDisable => "node-disable",
            Kind::NodeEnable => "node-enable",
            Kind::NodeFirstAddress => "node-first-address",
            Kind::TokenCreate => "token-create",
            Kind::TokenDelete => "token-delete",
            Kind::Checkpoint => "checkpoint",
            Kind::SignatureSpent => "signature_spent",
            Kind::SignatureDiscarded => "signature_discarded",
            Kind::ServingCertificate => "serving-certificate",
            Kind::AdminCertificate => "admin-certificate",
            Kind::CaSelfSigned => "ca-self-signed",
        }
    }

    /// Whether a record of this kind stands for one CA-key signature.
    pub fn is_signature(self) -> bool {
        matches!(
            self,
            Kind::Issue
                | Kind::SignatureSpent
                | Kind::ServingCertificate
                | Kind::AdminCertificate
                | Kind::CaSelfSigned
        )
    }
}

impl std::str::FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Kind, UnknownKind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.chars().take(64).collect()))
    }
}

/// A kind name that is not one of [`Kind::ALL`] (a damaged or foreign record).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit record kind {0:?}")]
pub struct UnknownKind(pub String);

impl rusqlite::types::ToSql for Kind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Kind {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Kind> {
        v.as_str()?
            .parse()
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// Compares with a written name (`record.kind == "issue"` in checks over exports).
impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;

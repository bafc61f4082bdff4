//! `spec.usages`: the 23 key usage strings of `certificates.k8s.io/v1` (reference §1.3), parsed
//! into a typed set.

use std::collections::BTreeSet;
use std::fmt;

/// Named bound: at most this many usage strings (there are 23 distinct values; a longer list
/// must contain a duplicate or an unknown value).
pub const MAX_USAGES: usize = 23;

/// One `spec.usages` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Usage {
    /// `signing`
    Signing,
    /// `digital signature`
    DigitalSignature,
    /// `content commitment`
    ContentCommitment,
    /// `key encipherment`
    KeyEncipherment,
    /// `key agreement`
    KeyAgreement,
    /// `data encipherment`
    DataEncipherment,
    /// `cert sign`
    CertSign,
    /// `crl sign`
    CrlSign,
    /// `encipher only`
    EncipherOnly,
    /// `decipher only`
    DecipherOnly,
    /// `any`
    Any,
    /// `server auth`
    ServerAuth,
    /// `client auth`
    ClientAuth,
    /// `code signing`
    CodeSigning,
    /// `email protection`
    EmailProtection,
    /// `s/mime`
    SMime,
    /// `ipsec end system`
    IpsecEndSystem,
    /// `ipsec tunnel`
    IpsecTunnel,
    /// `ipsec user`
    IpsecUser,
    /// `timestamping`
    Timestamping,
    /// `ocsp signing`
    OcspSigning,
    /// `microsoft sgc`
    MicrosoftSgc,
    /// `netscape sgc`
    NetscapeSgc,
}

const ALL: [(Usage, &str); 23] = [
    (Usage::Signing, "signing"),
    (Usage::DigitalSignature, "digital signature"),
    (Usage::ContentCommitment, "content commitment"),
    (Usage::KeyEncipherment, "key encipherment"),
    (Usage::KeyAgreement, "key agreement"),
    (Usage::DataEncipherment, "data encipherment"),
    (Usage::CertSign, "cert sign"),
    (Usage::CrlSign, "crl sign"),
    (Usage::EncipherOnly, "encipher only"),
    (Usage::DecipherOnly, "decipher only"),
    (Usage::Any, "any"),
    (Usage::ServerAuth, "server auth"),
    (Usage::ClientAuth, "client auth"),
    (Usage::CodeSigning, "code signing"),
    (Usage::EmailProtection, "email protection"),
    (Usage::SMime, "s/mime"),
    (Usage::IpsecEndSystem, "ipsec end system"),
    (Usage::IpsecTunnel, "ipsec tunnel"),
    (Usage::IpsecUser, "ipsec user"),
    (Usage::Timestamping, "timestamping"),
    (Usage::OcspSigning, "ocsp signing"),
    (Usage::MicrosoftSgc, "microsoft sgc"),
    (Usage::NetscapeSgc, "netscape sgc"),
];

impl Usage {
    /// Parses the exact wire string.
    pub fn parse(s: &str) -> Option<Usage> {
        ALL.iter().find(|(_, name)| *name == s).map(|(u, _)| *u)
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        ALL.iter()
            .find(|(u, _)| *u == self)
            .map_or("", |(_, name)| name)
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `spec.usages` list is not valid (API validation, reference §1.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The list is empty or missing.
    #[error("spec.usages is required and must not be empty")]
    Empty,
    /// More entries than there are distinct usages.
    #[error("spec.usages has {count} entries, at most {MAX_USAGES} allowed")]
    TooMany {
        /// Entries given.
        count: usize,
    },
    /// A value outside the 23 known strings.
    #[error("spec.usages: unsupported value {value:?}")]
    Unknown {
        /// The value given (truncated to 64 characters).
        value: String,
    },
    /// The same value twice.
    #[error("spec.usages: duplicate value {value:?}")]
    Duplicate {
        /// The repeated value.
        value: Usage,
    },
}

/// A validated, duplicate-free, non-empty set of usages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSet(BTreeSet<Usage>);

impl UsageSet {
    /// Parses the wire list: non-empty, known values, no duplicates.
    pub fn parse(list: &[String]) -> Result<UsageSet, UsageError> {
        if list.is_empty() {
            return Err(UsageError::Empty);
        }
        if list.len() > MAX_USAGES {
            return Err(UsageError::TooMany { count: list.len() });
        }
        let mut set = BTreeSet::new();
        for s in list {
            let usage = Usage::parse(s).ok_or_else(|| UsageError::Unknown {
                value: s.chars().take(64).collect(),
            })?;
            if !set.insert(usage) {
                return Err(UsageError::Duplicate { value: usage });
            }
        }
        Ok(UsageSet(set))
    }

    /// Builds a set from values (tests and the admin certificate).
    pub fn of(usages: &[Usage]) -> UsageSet {
        UsageSet(usages.iter().copied().collect())
    }

    /// True if `usage` is in the set.
    pub fn contains(&self, usage: Usage) -> bool {
        self.0.contains(&usage)
    }

    /// The usages, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Usage> + '_ {
        self.0.iter().copied()
    }

    /// The set as wire strings joined by ", " (for messages).
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests;

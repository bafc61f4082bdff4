//! Typed bootstrap-token values: the public id, the whole `id.secret` token, and the extra groups
//! a token may carry. Parsed once at the edge; everything inward takes these types.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Length of the public token id (kubeadm's `[a-z0-9]{6}`).
pub const TOKEN_ID_LEN: usize = 6;
/// Length of the token secret (kubeadm's `[a-z0-9]{16}`).
pub const TOKEN_SECRET_LEN: usize = 16;
/// The group every bootstrap token carries (reference §5.2).
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// The prefix of the extra groups a token may carry (kubeadm's `system:bootstrappers:`).
const EXTRA_GROUP_PREFIX: &str = "system:bootstrappers:";
/// Longest middle part of an extra group, from kubeadm's `[a-z0-9:-]{0,255}[a-z0-9]`.
const EXTRA_GROUP_MAX_MIDDLE: usize = 255;

/// The bytes of the token alphabet, `[a-z0-9]`.
pub(crate) const TOKEN_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn is_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// The public part of a bootstrap token, `[a-z0-9]{6}`. The user name is
/// `system:bootstrap:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BootstrapTokenId(String);

impl BootstrapTokenId {
    /// Parses a token id; `None` when it is not `[a-z0-9]{6}`.
    pub fn parse(s: &str) -> Option<BootstrapTokenId> {
        (s.len() == TOKEN_ID_LEN && s.bytes().all(is_token_char))
            .then(|| BootstrapTokenId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user name a token with this id authenticates as.
    pub fn user_name(&self) -> String {
        format!("system:bootstrap:{}", self.0)
    }
}

impl fmt::Display for BootstrapTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole bootstrap token `id.secret`, as presented by a client. The secret part is held as a
/// secret (zeroized, redacted `Debug`).
#[derive(Debug)]
pub struct BootstrapToken {
    /// The public id.
    pub id: BootstrapTokenId,
    /// The secret part (`[a-z0-9]{16}`).
    pub secret: SecretString,
}

impl BootstrapToken {
    /// Parses `^[a-z0-9]{6}\.[a-z0-9]{16}$`; `None` when the text is not a bootstrap token (it
    /// may then be a static token).
    pub fn parse(s: &str) -> Option<BootstrapToken> {
        let (id, secret) = s.split_once('.')?;
        let id = BootstrapTokenId::parse(id)?;
        (secret.len() == TOKEN_SECRET_LEN && secret.bytes().all(is_token_char)).then(|| {
            BootstrapToken {
                id,
                secret: SecretString::from(secret.to_owned()),
            }
        })
    }

    /// The token as the client presents it, `id.secret`.
    pub fn to_secret_string(&self) -> SecretString {
        SecretString::from(format!("{}.{}", self.id, self.secret.expose_secret()))
    }
}

/// True when `group` is a valid extra group for a bootstrap token:
/// `\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z` (kubeadm and reference §5.2).
pub fn is_valid_extra_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix(EXTRA_GROUP_PREFIX) else {
        return false;
    };
    let Some((last, middle)) = rest.as_bytes().split_last() else {
        return false;
    };
    is_token_char(*last)
        && middle.len() <= EXTRA_GROUP_MAX_MIDDLE
        && middle
            .iter()
            .all(|&b| is_token_char(b) || b == b':' || b == b'-')
}

#[cfg(test)]
mod tests;

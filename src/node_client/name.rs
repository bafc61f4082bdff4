//! CSR object names as the node handles them: its own `node-csr-<digest>` names and the
//! `csr-xxxxx` names the server generates. Only URL-safe characters are accepted, so a name
//! can be put into a path or a field selector without escaping.

/// Longest object name (Kubernetes names are at most 253 characters).
pub const MAX_CSR_NAME_LEN: usize = 253;

/// A CSR name made only of `A-Z a-z 0-9 - _ .` (the kubelet's base64url digest names contain
/// upper case and `_`; server-generated names are lower case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrName(String);

/// A CSR name outside the accepted alphabet or length.
#[derive(Debug, thiserror::Error)]
#[error("CSR name {name:?} is empty, too long or has characters other than A-Z a-z 0-9 - _ .")]
pub struct BadCsrName {
    /// The rejected name (truncated).
    pub name: String,
}

impl CsrName {
    /// Parses a name.
    pub fn parse(name: &str) -> Result<Self, BadCsrName> {
        let ok = !name.is_empty()
            && name.len() <= MAX_CSR_NAME_LEN
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(BadCsrName {
                name: name.chars().take(64).collect(),
            })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CsrName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests;

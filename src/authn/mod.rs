//! Authentication: who made the request. First match wins (SECURITY.md, mitigations):
//! a verified client certificate (CN = user, O = groups), then an `Authorization: Bearer`
//! token — a bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`) or a static token from the seeds'
//! CSV file. No credentials → [`AuthnOutcome::Anonymous`]; bad or expired credentials →
//! [`AuthnOutcome::Rejected`] (one 401 for all of them, never a hint which).

mod bearer;
pub mod bootstrap;
mod bootstrap_id;
mod client_cert;
mod error;
pub mod static_tokens;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;

pub use bootstrap::{BootstrapToken, BootstrapTokenId, BootstrapTokenRecord, BootstrapTokens};
pub use client_cert::CREDENTIAL_ID_KEY;
pub use error::{AuthnError, TokenLineProblem};
pub use static_tokens::StaticTokens;

use crate::config::AuthConfig;

/// The group every authenticated caller is in (reference §5.4).
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// File name of the SQLite database in the data dir (shared with the store).
pub const DB_FILE_NAME: &str = "kubesigner.db";

/// Who made a request, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name, e.g. `system:node:node1`, `system:bootstrap:abcdef`, `kubesigner-admin`.
    pub user: String,
    /// UID; empty when the method has none (client certificates, bootstrap tokens).
    pub uid: String,
    /// Groups; always includes `system:authenticated`.
    pub groups: Vec<String>,
    /// Extra attributes (e.g. the client certificate's credential id).
    pub extra: BTreeMap<String, Vec<String>>,
    /// How the caller authenticated.
    pub method: AuthMethod,
}

impl Identity {
    /// True when the caller is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A client certificate verified by the TLS layer.
    ClientCertificate,
    /// A token from the static token file.
    StaticToken,
    /// A bootstrap token.
    BootstrapToken(BootstrapTokenInfo),
}

/// What the approver needs to know about the bootstrap token a caller used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapTokenInfo {
    /// The token's public id.
    pub id: BootstrapTokenId,
    /// Glob patterns (globset syntax) the node name must match; empty = not bound.
    pub node_name_patterns: Vec<String>,
}

impl BootstrapTokenInfo {
    /// True when the token may bootstrap `node_name` (the part after `system:node:`): the token
    /// is unbound, or one of its patterns matches. A pattern that does not compile matches
    /// nothing (patterns are validated at create).
    pub fn allows_node(&self, node_name: &str) -> bool {
        self.node_name_patterns.is_empty()
            || self.node_name_patterns.iter().any(|p| {
                globset::Glob::new(p)
                    .map(|g| g.compile_matcher().is_match(node_name))
                    .unwrap_or(false)
            })
    }
}

/// The result of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnOutcome {
    /// The caller is known.
    Authenticated(Identity),
    /// The request carried no credentials.
    Anonymous,
    /// The credentials were bad or expired: answer one 401, never say which.
    Rejected(AuthnFailure),
}

/// Why credentials were rejected — for the log only, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthnFailure {
    /// The `Authorization` header is not `Bearer <token>` or is too long.
    #[error("malformed Authorization header")]
    MalformedHeader,
    /// No token matches.
    #[error("unknown token")]
    UnknownToken,
    /// A bootstrap token id exists but the secret is wrong.
    #[error("wrong bootstrap token secret")]
    WrongSecret,
    /// The bootstrap token has expired.
    #[error("expired bootstrap token")]
    Expired,
    /// The client certificate could not be read.
    #[error("unreadable client certificate")]
    BadCertificate,
    /// The client certificate lacks the clientAuth extended key usage.
    #[error("client certificate without clientAuth EKU")]
    NotClientAuth,
    /// The bootstrap-token store could not be read.
    #[error("bootstrap token store unavailable")]
    StoreUnavailable,
}

/// Authenticates requests. `Send + Sync`; one call costs at most one indexed SQLite read.
#[derive(Debug)]
pub struct Authenticator {
    /// Swapped whole on a reload (SIGHUP); a request uses the set current when it started.
    static_tokens: std::sync::RwLock<std::sync::Arc<StaticTokens>>,
    bootstrap: BootstrapTokens,
}

fn with_authenticated(mut groups: Vec<String>) -> Vec<String> {
    if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        groups.push(AUTHENTICATED_GROUP.to_owned());
    }
    groups
}

impl Authenticator {
    /// Loads the static token file (if configured) and opens the bootstrap-token table in
    /// `data_dir/kubesigner.db`.
    pub fn new(cfg: &AuthConfig, data_dir: &Path) -> Result<Authenticator, AuthnError> {
        let static_tokens = match &cfg.token_auth_file {
            Some(path) => StaticTokens::load(path)?,
            None => StaticTokens::empty(),
        };
        let bootstrap = BootstrapTokens::open(&data_dir.join(DB_FILE_NAME))?;
        Ok(Self::from_parts(static_tokens, bootstrap))
    }

    /// Builds an authenticator from already-loaded parts.
    pub fn from_parts(static_tokens: StaticTokens, bootstrap: BootstrapTokens) -> Authenticator {
        Authenticator {
            static_tokens: std::sync::RwLock::new(std::sync::Arc::new(static_tokens)),
            bootstrap,
        }
    }

    /// Replaces the static tokens (a reloaded token file).
    pub fn replace_static_tokens(&self, tokens: StaticTokens) {
        *self
            .static_tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(tokens);
    }

    /// The bootstrap-token table (e.g. for `kubesigner dev` to make a token).
    pub fn bootstrap_tokens(&self) -> &BootstrapTokens {
        &self.bootstrap
    }

    /// Authenticates one request. `client_chain` is the chain the TLS layer verified (leaf
    /// first); `authorization_header` the raw `Authorization` header value.
    pub fn authenticate(
        &self,
        client_chain: Option<&[CertificateDer<'_>]>,
        authorization_header: Option<&[u8]>,
        now: SystemTime,
    ) -> AuthnOutcome {
        if let Some(leaf) = client_chain.and_then(<[_]>::first) {
            match client_cert::identity_from_leaf(leaf) {
                Ok(Some(c)) => {
                    return AuthnOutcome::Authenticated(Identity {
                        user: c.user,
                        uid: String::new(),
                        groups: with_authenticated(c.groups),
                        extra: c.extra,
                        method: AuthMethod::ClientCertificate,
                    });
                }
                Ok(None) => {}
                Err(f) => return AuthnOutcome::Rejected(f),
            }
        }
        let Some(header) = authorization_header else {
            return AuthnOutcome::Anonymous;
        };
        let Some(token) = bearer::parse_bearer(header) else {
            return AuthnOutcome::Rejected(AuthnFailure::MalformedHeader);
        };
        match self.authenticate_token(token, now) {
            Ok(id) => AuthnOutcome::Authenticated(id),
            Err(f) => AuthnOutcome::Rejected(f),
        }
    }

    fn authenticate_token(&self, token: &str, now: SystemTime) -> Result<Identity, AuthnFailure> {
        if let Some(bt) = BootstrapToken::parse(token) {
            match self.bootstrap.lookup(&bt, now) {
                Ok(bootstrap::Lookup::Valid(rec)) => return Ok(bootstrap_identity(rec)),
                Ok(bootstrap::Lookup::WrongSecret) => return Err(AuthnFailure::WrongSecret),
                Ok(bootstrap::Lookup::Expired) => return Err(AuthnFailure::Expired),
                // Not a bootstrap token we know: it may still be a static token of that shape.
                Ok(bootstrap::Lookup::UnknownId) => {}
                Err(e) => {
                    tracing::error!(error = %e, "bootstrap token lookup failed");
                    return Err(AuthnFailure::StoreUnavailable);
                }
            }
        }
        let tokens = std::sync::Arc::clone(
            &self
                .static_tokens
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let user = tokens
            .lookup(token.as_bytes())
            .ok_or(AuthnFailure::UnknownToken)?;
        Ok(Identity {
            user: user.user.clone(),
            uid: user.uid.clone(),
            groups: with_authenticated(user.groups.clone()),
            extra: BTreeMap::new(),
            method: AuthMethod::StaticToken,
        })
    }
}

fn bootstrap_identity(rec: BootstrapTokenRecord) -> Identity {
    let mut groups = rec.groups;
    groups.push(bootstrap::BOOTSTRAPPERS_GROUP.to_owned());
    groups.sort();
    groups.dedup();
    Identity {
        user: rec.id.user_name(),
        uid: String::new(),
        groups: with_authenticated(groups),
        extra: BTreeMap::new(),
        method: AuthMethod::BootstrapToken(BootstrapTokenInfo {
            id: rec.id,
            node_name_patterns: rec.node_name_patterns,
        }),
    }
}

#[cfg(test)]
mod tests;

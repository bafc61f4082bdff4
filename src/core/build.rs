//! Building the core from the configuration, once per process, the same way in both modes:
//! the issuer over the token key (default CA and `[ca.signers]`), the approval policy over the
//! node inventory, and the inventory's reload task.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

use super::engine::{Core, ReadyFn};
use crate::config::Config;
use crate::issue::{CaBundle, CaError, IssueError, Issuer, SignerName};
use crate::policy::{Approver, GroupPatternError, InventoryError, NodeInventory};
use crate::signer::SignKey;

/// Why the core cannot be built (a configuration problem: exit 64).
#[derive(Debug, thiserror::Error)]
pub enum CoreBuildError {
    /// A CA certificate could not be loaded.
    #[error("CA certificate: {0}")]
    Ca(#[from] CaError),
    /// The issuer refused a CA/key pair.
    #[error("issuer: {0}")]
    Issue(#[from] IssueError),
    /// `[ca.signers]` names a signer this appliance does not know.
    #[error("[ca.signers]: unknown signer name {name:?}")]
    UnknownSigner {
        /// The name given.
        name: String,
    },
    /// No key was opened for a `[ca.signers]` entry.
    #[error("[ca.signers]: no key for signer {name:?}")]
    MissingSignerKey {
        /// The signer name.
        name: String,
    },
    /// `[issuance] node_inventory` could not be loaded.
    #[error("[issuance] node_inventory: {0}")]
    Inventory(#[from] InventoryError),
    /// An approval group pattern does not compile.
    #[error("approval policy: {0}")]
    Policy(#[from] GroupPatternError),
}

/// The issuer: the default CA (`[ca] cert_file` over `key`) and one CA per `[ca.signers]` entry
/// over its key from `signer_keys`. Also returns every CA certificate (trust roots for client
/// certificates) and publishes the default CA's expiry as a metric.
pub fn build_issuer(
    cfg: &Config,
    key: Arc<dyn SignKey>,
    mut signer_keys: BTreeMap<String, Arc<dyn SignKey>>,
) -> Result<(Issuer, Vec<CertificateDer<'static>>), CoreBuildError> {
    let bundle = CaBundle::load(&cfg.ca.cert_file)?;
    let der_of = |c: &x509_cert::Certificate| {
        der::Encode::to_der(c)
            .map(CertificateDer::from)
            .map_err(|e| IssueError::Build(e.to_string()))
    };
    let now_unix = crate::clock::unix_now();
    crate::metrics::global()
        .set_ca_not_after(crate::clock::unix_secs(bundle.not_after()), now_unix);
    let mut roots = vec![der_of(&bundle.cert)?];
    let mut issuer = Issuer::new(bundle, key, cfg.issuance.clone())?;
    for (name, sc) in &cfg.ca.signers {
        let unknown = || CoreBuildError::UnknownSigner { name: name.clone() };
        let signer = SignerName::parse(name).ok_or_else(unknown)?;
        let key = signer_keys
            .remove(name)
            .ok_or_else(|| CoreBuildError::MissingSignerKey { name: name.clone() })?;
        let bundle = CaBundle::load(&sc.cert_file)?;
        roots.push(der_of(&bundle.cert)?);
        issuer = issuer.with_signer_ca(signer, bundle, key)?;
    }
    Ok((issuer, roots))
}

/// The approval policy from `[auth]`, `[issuance]` and the node inventory file, if any.
pub fn build_approver(cfg: &Config) -> Result<Approver, CoreBuildError> {
    let inventory = match &cfg.issuance.node_inventory {
        Some(p) => Some(NodeInventory::load(p)?),
        None => None,
    };
    Ok(Approver::new(&cfg.auth, &cfg.issuance, inventory)?)
}

/// The core over an issuer, with its approval policy (`crate::reload` keeps the policy current
/// when the inventory file changes).
pub fn build_core(
    cfg: &Config,
    issuer: Issuer,
    ready: ReadyFn,
) -> Result<Arc<Core>, CoreBuildError> {
    Ok(Arc::new(Core::new(
        Arc::new(issuer),
        cfg.issuance.clone(),
        cfg.auth.admin_groups.clone(),
        build_approver(cfg)?,
        ready,
    )))
}

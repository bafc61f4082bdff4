//! The token keys a process signs with: `[signer] key` (the CA key, also the audit key's
//! token) and one per `[ca.signers]` entry, opened once, one login per token for the process.
//! `serve` and `controller` both open them here.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::core::ReadyFn;
use crate::signer::{Pkcs11Uri, SignKey, SignerError, TokenSigner, UriOrigin};

/// The opened keys.
#[derive(Debug)]
pub struct Keys {
    /// `[signer] key`: the CA key for every signer name not listed in `[ca.signers]`.
    pub main: Arc<TokenSigner>,
    /// `[ca.signers."<name>"] key`, by signer name.
    pub per_signer: BTreeMap<String, Arc<TokenSigner>>,
}

impl Keys {
    /// Opens every key of `cfg` on a blocking thread (the outer error: that thread failed). The
    /// module environment (`[signer].environment`) must already be applied
    /// (`app::lifecycle::module_runtime`).
    pub async fn open(cfg: &Config) -> Result<Result<Keys, SignerError>, tokio::task::JoinError> {
        let settings = crate::signer::Settings::from(&cfg.signer);
        let main = cfg.signer.key.clone();
        let others: Vec<(String, String)> = cfg
            .ca
            .signers
            .iter()
            .map(|(name, sc)| (name.clone(), sc.key.clone()))
            .collect();
        let open = move |key: &str| {
            let uri = Pkcs11Uri::parse(key, UriOrigin::ConfigFile)?;
            TokenSigner::open(&uri, settings.clone())
        };
        tokio::task::spawn_blocking(move || {
            let main = open(&main)?;
            let per_signer = others
                .into_iter()
                .map(|(name, key)| Ok((name, open(&key)?)))
                .collect::<Result<BTreeMap<_, _>, SignerError>>()?;
            Ok(Keys { main, per_signer })
        })
        .await
    }

    /// Ready while every key's token is.
    pub fn ready(&self) -> ReadyFn {
        let all: Vec<Arc<TokenSigner>> = std::iter::once(&self.main)
            .chain(self.per_signer.values())
            .cloned()
            .collect();
        Arc::new(move || all.iter().all(|s| s.ready()))
    }

    /// The per-signer keys as signing keys, for the issuer.
    pub fn per_signer_keys(&self) -> BTreeMap<String, Arc<dyn SignKey>> {
        self.per_signer
            .iter()
            .map(|(n, s)| (n.clone(), Arc::clone(s) as Arc<dyn SignKey>))
            .collect()
    }
}

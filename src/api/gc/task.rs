//! The garbage-collection task: every `[gc] interval`, CSRs that `rules::collect` says may
//! go are deleted through the store (watchers see DELETED, the audit hook records who and why).
//! Issued-certificate records stay: they outlive CSR objects.

use k8s_openapi::jiff::Timestamp;
use tokio::task::JoinHandle;

use super::collect;
use crate::api::error::ApiError;
use crate::api::{Api, blocking};
use crate::config::GcConfig;
use crate::store::StoreError;

impl Api {
    /// Deletes every CSR that may be collected now; returns how many went.
    pub async fn collect_garbage(&self, cfg: &GcConfig, now: Timestamp) -> Result<usize, ApiError> {
        let store = self.inner.store.clone();
        let (all, _) = blocking(move || store.list()).await??;
        let doomed: Vec<(String, &'static str)> = all
            .iter()
            .filter_map(|c| Some((c.metadata.name.clone()?, collect(c, now, cfg)?.as_str())))
            .collect();
        let mut deleted = 0;
        for (name, reason) in doomed {
            let store = self.inner.store.clone();
            let actor = format!("kubesigner-gc ({reason})");
            let n = name.clone();
            match blocking(move || store.delete(&n, &actor)).await? {
                Ok(_) => {
                    tracing::info!(csr = %name, reason, "csr garbage-collected");
                    deleted += 1;
                }
                // Deleted by someone else in the meantime.
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }

    /// Starts the GC task (nothing when `[gc] enabled = false`).
    pub fn spawn_gc(&self, cfg: GcConfig) -> Option<JoinHandle<()>> {
        if !cfg.enabled {
            return None;
        }
        let api = self.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(cfg.interval).await;
                if let Err(e) = api.collect_garbage(&cfg, crate::api::csr::now().0).await {
                    tracing::warn!(error = %e, "garbage collection failed");
                }
            }
        }))
    }
}

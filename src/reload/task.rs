//! The reload task: one per process, two triggers — SIGHUP (when the caller can read the
//! configuration again) and a change of the node inventory file's modification time.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;

use super::inventory::{POLL_INTERVAL, modified, rebuild};
use super::{LoadError, ReloadHandles, ReloadReport, reload};
use crate::config::Config;

/// Reads the configuration again (the file with the command line's overrides).
pub type LoadFn = Arc<dyn Fn() -> Result<Config, LoadError> + Send + Sync>;

/// Spawns the reload task. With `load`, the SIGHUP handler is installed before this returns
/// (so a SIGHUP after it cannot end the process) and each SIGHUP reloads every part; without
/// it, SIGHUP keeps its default. The node inventory file (if configured) is polled either way.
/// Runs until aborted.
pub fn spawn(h: ReloadHandles, started: Config, load: Option<LoadFn>) -> JoinHandle<()> {
    let hup = load.and_then(|load| match signal(SignalKind::hangup()) {
        Ok(s) => Some((s, load)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: reload on SIGHUP disabled");
            None
        }
    });
    tokio::spawn(run(h, started, hup))
}

async fn run(h: ReloadHandles, started: Config, mut hup: Option<(Signal, LoadFn)>) {
    let inventory = started.issuance.node_inventory.clone();
    let mut seen = inventory.as_deref().and_then(modified);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            Some(load) = next_hup(&mut hup) => {
                // The SIGHUP re-reads the inventory too: the poll need not do it again.
                seen = inventory.as_deref().and_then(modified);
                let (h2, started2) = (h.clone(), started.clone());
                let done = tokio::task::spawn_blocking(move || {
                    load().map(|new| reload(&h2, &started2, &new))
                })
                .await;
                log_outcome(done);
            }
            _ = tick.tick(), if inventory.is_some() => {
                if let Some(path) = &inventory {
                    poll_inventory(&h, &started, path, &mut seen).await;
                }
            }
        }
    }
}

/// The next SIGHUP's reader; pending forever without a handler (or once the stream ends).
async fn next_hup(hup: &mut Option<(Signal, LoadFn)>) -> Option<LoadFn> {
    match hup {
        Some((s, load)) => match s.recv().await {
            Some(()) => Some(Arc::clone(load)),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Rebuilds the approval policy when the inventory file's modification time changed.
async fn poll_inventory(
    h: &ReloadHandles,
    started: &Config,
    path: &Path,
    seen: &mut Option<SystemTime>,
) {
    let now = modified(path);
    if now == *seen {
        return;
    }
    *seen = now;
    let (p, a, i) = (
        path.to_path_buf(),
        started.auth.clone(),
        started.issuance.clone(),
    );
    match tokio::task::spawn_blocking(move || rebuild(&p, &a, &i)).await {
        Ok(Ok(approver)) => {
            h.core.replace_approver(approver);
            tracing::info!(path = %path.display(), "node inventory reloaded");
        }
        Ok(Err(why)) => tracing::warn!(
            path = %path.display(),
            error = %why,
            "node inventory not reloaded: keeping the previous one"
        ),
        Err(e) => tracing::warn!(error = %e, "node inventory reload task failed"),
    }
}

fn log_outcome(done: Result<Result<ReloadReport, LoadError>, tokio::task::JoinError>) {
    let m = crate::metrics::global();
    let result = match done {
        Ok(Ok(r)) => {
            for (part, why) in &r.failed {
                tracing::warn!(part, error = %why, "reload: keeping the previous version");
            }
            if !r.need_restart.is_empty() {
                tracing::warn!(keys = ?r.need_restart, "reload: these changes need a restart");
            }
            tracing::info!(reloaded = ?r.reloaded, failed = r.failed.len(), "reloaded on SIGHUP");
            if r.failed.is_empty() { "ok" } else { "failed" }
        }
        Ok(Err(why)) => {
            tracing::warn!(error = %why, "reload: configuration does not load; keeping the previous one");
            "failed"
        }
        Err(e) => {
            tracing::warn!(error = %e, "reload task failed");
            "failed"
        }
    };
    m.reloads
        .get_or_create(&crate::metrics::ResultLabels { result })
        .inc();
}

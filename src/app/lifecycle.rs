//! Process lifecycle for `serve` and `controller`: the root refusal, the runtime (after the
//! module environment), systemd readiness (`Type=notify`), the watchdog ping backed by a real
//! health check (token signer ready, store readable and the data directory writable), SIGTERM,
//! and the grace for closing the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use sd_notify::NotifyState;

use crate::api::Api;
use crate::api::hooks::AuthnResult;

/// How long exit waits for calls still inside the token after the server has stopped (a hung
/// token must not keep the process from exiting; systemd's stop timeout is longer).
pub const TOKEN_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The file the health check writes and removes in the data directory.
const PROBE_FILE: &str = ".kubesigner-health-probe";

/// Why `serve` refuses to start as root.
#[derive(Debug, thiserror::Error)]
pub enum RootRefusal {
    /// The effective uid is 0 and `--allow-root` was not given.
    #[error(
        "refusing to run as root: run as the dedicated kubesigner user (see systemd/), or pass --allow-root"
    )]
    Root,
}

/// Refuses an effective uid of 0 unless `allow_root`.
pub fn check_not_root(allow_root: bool) -> Result<(), RootRefusal> {
    if !allow_root && rustix::process::geteuid().is_root() {
        return Err(RootRefusal::Root);
    }
    Ok(())
}

/// Tells systemd (if it started us with `NOTIFY_SOCKET`) that the signer and store are ready.
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("serving")]) {
        tracing::warn!(error = %e, "cannot notify systemd of readiness");
    }
}

/// Tells systemd the service is stopping.
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// The health check behind the watchdog: `/readyz` (every token signer has a working session,
/// the store answers) and a write to the data directory (the store can commit).
pub async fn healthy(api: &Api, data_dir: &Path) -> bool {
    let req = match Request::get("/readyz").body(Empty::<Bytes>::new()) {
        Ok(r) => r,
        Err(_) => return false,
    };
    let ready = api.handle_as(req, AuthnResult::Anonymous).await.status() == StatusCode::OK;
    let probe: PathBuf = data_dir.join(PROBE_FILE);
    let writable = tokio::task::spawn_blocking(move || {
        std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe))
    })
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    ready && writable
}

/// Pings the systemd watchdog at half its interval while [`healthy`] holds; an unhealthy
/// appliance stops pinging (and says why), so systemd restarts it after `WatchdogSec=`.
/// Returns at once when no watchdog is configured.
pub async fn watchdog(api: Api, data_dir: PathBuf) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        if healthy(&api, &data_dir).await {
            if let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
                tracing::warn!(error = %e, "cannot ping the systemd watchdog");
            }
        } else {
            tracing::error!(
                "health check failed (token signer or store); not pinging the watchdog"
            );
            let _ = sd_notify::notify(&[NotifyState::Status("unhealthy: signer or store")]);
        }
    }
}

/// Applies the PKCS#11 module's environment (before any thread starts: the module reads it
/// when it loads) and builds the async runtime. `Err` is the exit code, already logged.
pub fn module_runtime(
    env: &std::collections::BTreeMap<String, String>,
) -> Result<tokio::runtime::Runtime, i32> {
    if let Err(e) = crate::signer::apply_module_environment(env) {
        tracing::error!(error = %e, "cannot apply the module environment");
        return Err(crate::exit::USAGE);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            tracing::error!(error = %e, "cannot start the async runtime");
            crate::exit::SOFTWARE
        })
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

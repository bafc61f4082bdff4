//! The `kubesigner bootstrap` flow: the kubelet's one-shot bootstrap (reference §4.2), then,
//! unless `--once`, rotation of the client certificate with the node's own certificate and
//! of the serving certificate (reference §4.4, §4.5).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::sync::atomic::{AtomicBool, Ordering};

use super::certdir::{CertDirError, CertStore};
use super::client::{ApiClient, ClientError, Credential};
use super::csr::CertKind;
use super::node::NodeName;
use super::node_side::NodeSide;
use super::request::{Naming, RequestError, request_certificate};
use super::rotation::{RenewAt, retry_delay};
use super::usable::{Unusable, check_client};
use crate::kubeconfig::{
    ClientAuth, ClientConfig, KubeconfigReadError, NodeKubeconfig, PemSource, read_client_config,
};

/// Time one rotation attempt waits for its certificate (client-go's `certificateWaitTimeout`).
pub const ROTATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What `kubesigner bootstrap` was asked to do.
#[derive(Debug)]
pub struct BootstrapConfig {
    /// The bootstrap kubeconfig (appliance URL, CA, bootstrap token).
    pub bootstrap_kubeconfig: PathBuf,
    /// The node kubeconfig to write.
    pub kubeconfig: PathBuf,
    /// The cert dir.
    pub cert_dir: PathBuf,
    /// The node name.
    pub node: NodeName,
    /// Stop after the certificates are in place.
    pub once: bool,
    /// Server URL written to the node kubeconfig instead of the bootstrap one.
    pub server: Option<String>,
    /// CA file written to the node kubeconfig instead of the bootstrap one.
    pub certificate_authority: Option<PathBuf>,
    /// Serving certificate SANs, when one is wanted.
    pub serving: Option<CertKind>,
    /// How long the bootstrap request waits for its certificate.
    pub wait_timeout: Duration,
    /// When to renew.
    pub renew: RenewAt,
}

/// Errors of the bootstrap command.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// A kubeconfig could not be read.
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigReadError),
    /// The bootstrap kubeconfig has no bearer token and no client certificate.
    #[error("bootstrap kubeconfig {path} holds no credential")]
    NoCredential {
        /// The file.
        path: PathBuf,
    },
    /// A file the kubeconfig names could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bootstrap kubeconfig has no CA.
    #[error("bootstrap kubeconfig {path} names no certificate authority")]
    NoCa {
        /// The file.
        path: PathBuf,
    },
    /// The HTTPS client could not be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The cert dir failed.
    #[error(transparent)]
    CertDir(#[from] CertDirError),
    /// The request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The client certificate cannot be used (expired, not yet valid, not chaining).
    #[error("the node's client certificate cannot be used: {0}")]
    Unusable(#[from] Unusable),
}

/// Runs the command. `in_place` is set once the node's certificates are in place (the first
/// bootstrap and serving request done), so a stop signal after that point is a clean stop of
/// the rotation service rather than an interrupted bootstrap.
///
/// Cancellation: every file write below is synchronous (no `.await` inside a write), so
/// dropping this future at an await point — what a stop signal does — never interrupts a
/// write: the directory keeps either the old or the new pair, never half of one.
pub async fn run(cfg: &BootstrapConfig, in_place: &AtomicBool) -> Result<(), BootstrapError> {
    let boot = read_client_config(&cfg.bootstrap_kubeconfig)?;
    let ca = boot.ca.clone().ok_or_else(|| BootstrapError::NoCa {
        path: cfg.bootstrap_kubeconfig.clone(),
    })?;
    let ca_pem = load(&ca)?;
    let client_store = CertStore::new(&cfg.cert_dir, CertKind::Client.file_prefix());
    match startup_check(cfg, &client_store, &ca_pem) {
        Ok(()) => {
            tracing::info!(kubeconfig = %cfg.kubeconfig.display(), "existing client certificate is valid; not bootstrapping");
        }
        Err(why) => {
            if why != Unusable::Missing {
                tracing::warn!(reason = %why, "falling back to the bootstrap kubeconfig");
            }
            bootstrap_client(cfg, &boot, &ca_pem, &client_store).await?;
        }
    }
    write_node_kubeconfig(cfg, &boot, ca, &client_store)?;
    let node = NodeSide::new(cfg, boot, ca_pem, client_store);
    if let Some(kind) = &cfg.serving {
        node.ensure_serving(kind).await?;
    }
    in_place.store(true, Ordering::SeqCst);
    if cfg.once {
        return Ok(());
    }
    node.rotate(cfg.serving.as_ref()).await
}

/// The kubelet's restart test plus ours: the current pair is usable (see
/// [`super::usable`]) and the node kubeconfig names a certificate before its NotAfter.
fn startup_check(cfg: &BootstrapConfig, store: &CertStore, ca_pem: &[u8]) -> Result<(), Unusable> {
    check_client(store.load_current().as_ref(), ca_pem, SystemTime::now())?;
    if existing_kubeconfig_valid(&cfg.kubeconfig) {
        Ok(())
    } else {
        Err(Unusable::Missing)
    }
}

fn load(source: &PemSource) -> Result<Vec<u8>, BootstrapError> {
    source
        .load()
        .map(|b| b.to_vec())
        .map_err(|e| BootstrapError::ReadFile {
            path: match source {
                PemSource::File(p) => p.clone(),
                PemSource::Data(_) => PathBuf::from("<inline data>"),
            },
            source: e,
        })
}

/// The kubelet's restart test: the kubeconfig exists and every certificate it names is
/// before its NotAfter.
fn existing_kubeconfig_valid(path: &Path) -> bool {
    let Ok(cfg) = read_client_config(path) else {
        return false;
    };
    let ClientAuth::Certificate { cert, .. } = cfg.auth else {
        return false;
    };
    let Ok(pem) = cert.load() else {
        return false;
    };
    let chain = super::certdir::parse_chain(&String::from_utf8_lossy(&pem));
    let now = SystemTime::now();
    !chain.is_empty()
        && chain
            .iter()
            .all(|c| now < c.tbs_certificate().validity().not_after.to_system_time())
}

/// The bootstrap path (reference §4.2): pending key, `node-csr-` name, bootstrap credential.
pub(super) async fn bootstrap_client(
    cfg: &BootstrapConfig,
    boot: &ClientConfig,
    ca_pem: &[u8],
    store: &CertStore,
) -> Result<(), BootstrapError> {
    let credential = match &boot.auth {
        ClientAuth::Token(t) => Credential::Token(t.clone()),
        ClientAuth::Certificate { cert, key } => Credential::Certificate {
            cert_pem: load(cert)?,
            key_pem: zeroize::Zeroizing::new(load(key)?),
        },
        ClientAuth::None => {
            return Err(BootstrapError::NoCredential {
                path: cfg.bootstrap_kubeconfig.clone(),
            });
        }
    };
    let client = ApiClient::new(
        &boot.server,
        ca_pem,
        boot.tls_server_name.as_deref(),
        credential,
    )?;
    probe_health(&client).await;
    let key = store.pending_key()?;
    let deadline = tokio::time::Instant::now() + cfg.wait_timeout;
    let mut attempt = 0u32;
    let cert = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match request_certificate(
            &client,
            &key,
            &cfg.node,
            &CertKind::Client,
            Naming::Digest,
            left,
        )
        .await
        {
            Ok(cert) => break cert,
            Err(RequestError::Create(e))
                if !super::wait::is_refusal(&e) && e.code().is_none_or(|c| c >= 500) =>
            {
                let pause = retry_delay(attempt)
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
                if pause.is_zero() {
                    return Err(RequestError::Create(e).into());
                }
                tracing::warn!(error = %e, retry_in = ?pause, "cannot reach the signer; retrying");
                tokio::time::sleep(pause).await;
                attempt = attempt.saturating_add(1);
            }
            Err(e) => return Err(e.into()),
        }
    };
    let path = store.update(&cert, &key, SystemTime::now())?;
    store.remove_pending_key();
    tracing::info!(file = %path.display(), "client certificate stored");
    Ok(())
}

/// Polls `/healthz` for up to a minute, as the kubelet does; only logs when it stays down.
async fn probe_health(client: &ApiClient) {
    const HEALTHZ_WAIT: Duration = Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + HEALTHZ_WAIT;
    while tokio::time::Instant::now() < deadline {
        if client.healthz().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1600 + super::wait::random_in(0..800))).await;
    }
    tracing::warn!("the signer's /healthz did not answer within a minute; trying anyway");
}

fn write_node_kubeconfig(
    cfg: &BootstrapConfig,
    boot: &ClientConfig,
    boot_ca: PemSource,
    store: &CertStore,
) -> Result<(), BootstrapError> {
    let current =
        std::path::absolute(store.current_path()).map_err(|source| BootstrapError::ReadFile {
            path: store.current_path(),
            source,
        })?;
    let ca = match &cfg.certificate_authority {
        Some(p) => PemSource::File(std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        None => boot_ca,
    };
    let out = NodeKubeconfig {
        server: cfg.server.clone().unwrap_or_else(|| boot.server.clone()),
        ca,
        tls_server_name: if cfg.server.is_some() {
            None
        } else {
            boot.tls_server_name.clone()
        },
        cert_and_key_file: current,
    };
    out.write(&cfg.kubeconfig)?;
    tracing::info!(kubeconfig = %cfg.kubeconfig.display(), "node kubeconfig written");
    Ok(())
}

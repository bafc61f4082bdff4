//! `kubesigner bootstrap`: the kubelet's TLS bootstrap as a command (flags with the kubelet's
//! meanings), then client and serving certificate rotation unless `--once`.
//!
//! Stopping: SIGTERM and SIGINT stop the command at its next await point. No file write is ever
//! in progress there (writes are synchronous: temporary file, fsync, rename; symlink swap through
//! `-updated`), so the cert dir and the kubeconfig hold either the old or the new state. The exit
//! code is 0 when the node's certificates were in place (a rotating service was stopped), and
//! 128 + the signal number (143 for SIGTERM, 130 for SIGINT) when the stop interrupted the first
//! bootstrap or a `--once` run before its certificates were in place, so a script or unit that
//! waits for the certificates does not go on without them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;

use crate::exit;
use crate::node_client::csr::CertKind;
use crate::node_client::node::NodeName;
use crate::node_client::request::RequestError;
use crate::node_client::rotation::RenewAt;
use crate::node_client::run::{BootstrapConfig, BootstrapError, run};
use crate::node_client::wait::WaitError;

/// The request was refused: Denied, Failed, or the credential was not accepted (EX_NOPERM).
pub const EXIT_REFUSED: i32 = 77;
/// The cert dir or the kubeconfig could not be written (EX_CANTCREAT).
pub const EXIT_CANT_CREATE: i32 = 73;
/// Stopped by SIGTERM before the certificates were in place (128 + 15).
pub const EXIT_SIGTERM: i32 = 143;
/// Stopped by SIGINT before the certificates were in place (128 + 2).
pub const EXIT_SIGINT: i32 = 130;
/// Most SANs a serving request may carry (the appliance's CSR bound is of the same order;
/// a kubelet has a handful of addresses).
const MAX_SERVING_SANS: usize = 64;

/// `kubesigner bootstrap` arguments.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Kubeconfig with the signer's URL, CA and a bootstrap token.
    #[arg(long, alias = "experimental-bootstrap-kubeconfig")]
    bootstrap_kubeconfig: PathBuf,
    /// Node kubeconfig to write (points at `<cert-dir>/kubelet-client-current.pem`).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Directory for the key and certificate files.
    #[arg(long)]
    cert_dir: PathBuf,
    /// Node name (default: the lower-cased host name).
    #[arg(long)]
    node_name: Option<String>,
    /// Exit once the certificates are in place (no rotation).
    #[arg(long)]
    once: bool,
    /// API server URL for the node kubeconfig (default: the bootstrap kubeconfig's).
    #[arg(long)]
    server: Option<String>,
    /// CA file for the node kubeconfig (default: the bootstrap kubeconfig's CA).
    #[arg(long)]
    certificate_authority: Option<PathBuf>,
    /// Also request and keep a kubelet serving certificate.
    #[arg(long)]
    serving: bool,
    /// IP address for the serving certificate (repeatable).
    #[arg(long = "address", requires = "serving")]
    addresses: Vec<IpAddr>,
    /// DNS name for the serving certificate (repeatable).
    #[arg(long = "hostname", requires = "serving")]
    hostnames: Vec<String>,
    /// How long the bootstrap request waits for its certificate.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    wait_timeout: Duration,
    /// Tests only: renew this long after each certificate instead of at 70–90 % of its life.
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    test_renew_after: Option<Duration>,
}

/// A usage error in the arguments.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    /// The node name (given or from the host name) is not valid.
    #[error(transparent)]
    Node(#[from] crate::node_client::node::BadNodeName),
    /// `--serving` without any SAN, or too many.
    #[error("--serving needs between 1 and {MAX_SERVING_SANS} --address / --hostname values")]
    Sans,
    /// A `--hostname` is not a DNS name.
    #[error("--hostname {0:?} is not a DNS name")]
    Hostname(String),
}

impl BootstrapArgs {
    fn config(self) -> Result<BootstrapConfig, ArgError> {
        let node = match &self.node_name {
            Some(n) => crate::node_client::node::parse(n)?,
            None => crate::node_client::node::from_hostname()?,
        };
        let serving = if self.serving {
            let mut dns = Vec::new();
            for h in &self.hostnames {
                let h = h.to_lowercase();
                NodeName::parse(&h).ok_or_else(|| ArgError::Hostname(h.clone()))?;
                dns.push(h);
            }
            let mut ips = self.addresses.clone();
            dns.sort();
            dns.dedup();
            ips.sort();
            ips.dedup();
            let n = dns.len() + ips.len();
            if n == 0 || n > MAX_SERVING_SANS {
                return Err(ArgError::Sans);
            }
            Some(CertKind::Serving { dns, ips })
        } else {
            None
        };
        Ok(BootstrapConfig {
            bootstrap_kubeconfig: self.bootstrap_kubeconfig,
            kubeconfig: self.kubeconfig,
            cert_dir: self.cert_dir,
            node,
            once: self.once,
            server: self.server,
            certificate_authority: self.certificate_authority,
            serving,
            wait_timeout: self.wait_timeout,
            renew: self
                .test_renew_after
                .map_or(RenewAt::Lifetime, RenewAt::After),
        })
    }

    /// Runs the command; returns the exit code.
    pub fn run(self) -> i32 {
        let cfg = match self.config() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kubesigner bootstrap: {e}");
                return exit::USAGE;
            }
        };
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("kubesigner bootstrap: cannot start the runtime: {e}");
                return exit::SOFTWARE;
            }
        };
        rt.block_on(run_until_stopped(&cfg))
    }
}

/// Runs the flow until it ends or SIGTERM / SIGINT stops it; returns the exit code.
async fn run_until_stopped(cfg: &BootstrapConfig) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("kubesigner bootstrap: cannot handle stop signals: {e}");
            return exit::SOFTWARE;
        }
    };
    let in_place = AtomicBool::new(false);
    tokio::select! {
        r = run(cfg, &in_place) => match r {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("kubesigner bootstrap: {e}");
                exit_code(&e)
            }
        },
        _ = term.recv() => stopped("SIGTERM", EXIT_SIGTERM, &in_place),
        _ = int.recv() => stopped("SIGINT", EXIT_SIGINT, &in_place),
    }
}

fn stopped(signal: &str, interrupted: i32, in_place: &AtomicBool) -> i32 {
    if in_place.load(Ordering::SeqCst) {
        tracing::info!(signal, "stopped; the certificates are in place");
        0
    } else {
        tracing::warn!(signal, "stopped before the certificates were in place");
        eprintln!(
            "kubesigner bootstrap: stopped by {signal} before the certificates were in place"
        );
        interrupted
    }
}

fn exit_code(e: &BootstrapError) -> i32 {
    match e {
        BootstrapError::Kubeconfig(crate::kubeconfig::KubeconfigReadError::Write { .. })
        | BootstrapError::CertDir(_) => EXIT_CANT_CREATE,
        BootstrapError::Kubeconfig(_)
        | BootstrapError::NoCredential { .. }
        | BootstrapError::NoCa { .. }
        | BootstrapError::ReadFile { .. } => exit::NO_INPUT,
        BootstrapError::Request(r) if r.is_refusal() => EXIT_REFUSED,
        BootstrapError::Request(RequestError::Wait(WaitError::Timeout { .. }))
        | BootstrapError::Request(RequestError::Create(_))
        | BootstrapError::Unusable(_) => exit::UNAVAILABLE,
        BootstrapError::Client(_) => exit::USAGE,
        BootstrapError::Request(_) => exit::SOFTWARE,
    }
}

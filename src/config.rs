//! Typed configuration (TOML). Unknown keys are rejected; a bad file exits 64 before anything
//! binds or logs in. Every key is documented in `systemd/kubesigner.example.toml`.
//!
//! Sections are owned by the layer that uses them: `[signer]` by `src/signer/`, `[ca]` by
//! `src/issue/`, the rest by the API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for durable state: the SQLite store (CSRs, bootstrap-token hashes, node states,
    /// the audit chain). Relative paths are relative to the config file's directory.
    pub data_dir: PathBuf,
    /// The PKCS#11 token holding the CA key.
    pub signer: SignerConfig,
    /// The CA certificate(s) that go with the token key.
    pub ca: CaConfig,
    /// Who may authenticate and who is an administrator.
    #[serde(default)]
    pub auth: AuthConfig,
    /// What is issued and auto-approved.
    #[serde(default)]
    pub issuance: IssuanceConfig,
    /// The HTTPS API: listen address, serving certificate, bounds.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[gc]`: CSR garbage collection ages (defaults: upstream's csrcleaner).
    #[serde(default)]
    pub gc: crate::api::gc::GcConfig,
    /// `[limits]`: per-node and per-requester CSR-create limits.
    #[serde(default)]
    pub limits: crate::api::limits::LimitsConfig,
    /// `[audit]`: signed checkpoints of the audit chain.
    #[serde(default)]
    pub audit: crate::audit::checkpoint::AuditConfig,
    /// `[controller]`: `kubesigner controller` (external signer, leader election).
    #[serde(default)]
    pub controller: crate::controller::ControllerConfig,
}

/// `[server]`: the HTTPS API. Every key is optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (default `127.0.0.1:6443`; the seeds' `--listen`).
    pub listen: std::net::SocketAddr,
    /// PEM serving certificate chain (the seeds' `--tls-cert-file`). Without it the appliance
    /// issues itself a serving certificate from its CA for a key generated at start (kept in
    /// memory only).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file` (the seeds' `--tls-private-key-file`).
    pub tls_private_key_file: Option<PathBuf>,
    /// Extra DNS names / IP addresses for the generated serving certificate (it always names
    /// `localhost`, `127.0.0.1`, `::1` and the listen address when that is not a wildcard).
    pub serving_names: Vec<String>,
    /// Lifetime of the generated serving certificate.
    #[serde(with = "humantime_serde_compat")]
    pub serving_cert_ttl: Duration,
    /// Largest request body in bytes (413 beyond; kube-apiserver allows about 3 MiB).
    pub max_body_bytes: usize,
    /// Concurrent watches (429 beyond).
    pub max_watches: usize,
    /// Longest watch; longer `timeoutSeconds` are cut to it.
    #[serde(with = "humantime_serde_compat")]
    pub max_watch_timeout: Duration,
    /// Concurrent connections; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Requests handled at once (health probes excepted); further ones get 429 with
    /// `Retry-After` (kube-apiserver's `--max-requests-inflight` default is 400).
    pub max_requests_in_flight: usize,
    /// Time allowed for the TLS handshake (from accept).
    #[serde(with = "humantime_serde_compat")]
    pub handshake_timeout: Duration,
    /// Time allowed for a request's headers to arrive (slow-header clients are cut off); on a
    /// new connection, from the end of the TLS handshake to the first request's headers, on
    /// HTTP/1.1 and HTTP/2 alike (protocol detection included).
    #[serde(with = "humantime_serde_compat")]
    pub header_read_timeout: Duration,
    /// Time allowed for a request's body to arrive once its headers have (slow-body clients
    /// are answered 400 and lose their request slot).
    #[serde(with = "humantime_serde_compat")]
    pub body_read_timeout: Duration,
    /// Concurrent connections from one source address (further ones are closed at once), so
    /// one host cannot hold every connection slot. Default: a quarter of `max_connections`.
    pub max_connections_per_address: Option<usize>,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive
    /// and HTTP/2 alike; a watch is a request in flight).
    #[serde(with = "humantime_serde_compat")]
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings; a peer that does not answer one within the same
    /// interval is disconnected.
    #[serde(with = "humantime_serde_compat")]
    pub http2_keepalive_interval: Duration,
    /// Most requests in flight for one identity (user; all anonymous callers count as one).
    /// Default: half of `max_requests_in_flight`.
    pub max_requests_per_identity: Option<usize>,
    /// Request slots only administrators may take. Default: a tenth of
    /// `max_requests_in_flight`.
    pub admin_reserved_requests: Option<usize>,
    /// Most watches for one identity. Default: half of `max_watches`.
    pub max_watches_per_identity: Option<usize>,
    /// Watch slots only administrators may take. Default: a tenth of `max_watches`.
    pub admin_reserved_watches: Option<usize>,
    /// External-signing mode (issue 10): CSRs are stored and served but never auto-approved
    /// or signed; a controller (`kubesigner controller`) approves through `/approval` and
    /// writes `status.certificate` through `/status`, authorized by `[auth] rbac_manifests`.
    pub external_signing: bool,
    /// Log format of `serve` when `--log-format` is not given: `text` or `json`.
    pub log_format: LogFormat,
}

/// Log output format (`--log-format`, `[server] log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    #[default]
    Text,
    /// One JSON object per line on stderr.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 6443)),
            tls_cert_file: None,
            tls_private_key_file: None,
            serving_names: Vec::new(),
            // A year (capped by [issuance] max_ttl); ≤ 825 days, renewed 60 days ahead.
            serving_cert_ttl: Duration::from_secs(8760 * 3600),
            max_body_bytes: 1024 * 1024,
            max_watches: 1024,
            max_watch_timeout: Duration::from_secs(1800),
            max_connections: 4096,
            max_requests_in_flight: 400,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: crate::api::DEFAULT_BODY_READ_TIMEOUT,
            max_connections_per_address: None,
            idle_timeout: Duration::from_secs(90),
            http2_keepalive_interval: Duration::from_secs(30),
            max_requests_per_identity: None,
            admin_reserved_requests: None,
            max_watches_per_identity: None,
            admin_reserved_watches: None,
            external_signing: false,
            log_format: LogFormat::Text,
        }
    }
}

/// `[signer]`: where the CA key lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerConfig {
    /// RFC 7512 URI of the CA key, e.g.
    /// `pkcs11:token=kubesigner-dev;object=ca?module-path=...&pin-source=file:...`.
    pub key: String,
    /// Environment the PKCS#11 module reads when it loads (e.g. `SOFTHSM2_CONF`). Applied before
    /// the module loads, by re-executing the process with it; never set in a running process.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// How long one signing call may take before the signer is marked down.
    #[serde(default = "default_sign_timeout", with = "humantime_serde_compat")]
    pub sign_timeout: Duration,
    /// Signing sessions in the pool when the key URI has no `max-sessions` (1 to 64).
    #[serde(default = "default_max_sessions", deserialize_with = "max_sessions")]
    pub max_sessions: usize,
    /// Interval of the keepalive call on the token while idle (vendor idle timeouts are
    /// ≈ 30 s).
    #[serde(
        default = "default_keepalive_interval",
        with = "humantime_serde_compat"
    )]
    pub keepalive_interval: Duration,
}

/// `[ca]`: the CA certificate for the token key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// PEM CA certificate (the seeds' `--cluster-signing-cert-file`), optionally followed by
    /// the intermediates up to, not including, the root.
    pub cert_file: PathBuf,
    /// A separate CA per signer name (kube-controller-manager's
    /// `--cluster-signing-<signer>-{cert,key}-file`), keyed by signer name, e.g.
    /// `[ca.signers."kubernetes.io/kubelet-serving"]`. Names not listed use the CA above.
    #[serde(default)]
    pub signers: BTreeMap<String, SignerCaConfig>,
}

/// `[ca.signers."<signer name>"]`: the CA certificate and token key for one signer name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerCaConfig {
    /// PEM CA certificate for this signer name, optionally followed by its chain.
    pub cert_file: PathBuf,
    /// RFC 7512 URI of this CA's key (may be another key in the same token).
    pub key: String,
}

/// `[auth]`: authentication inputs (the seeds' `--token-auth-file`, `--client-ca-file`) and the
/// groups and users the authorizer treats specially. Every key is optional.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static token file, CSV `token,user,uid,"group1,group2"` (the seeds' `--token-auth-file`).
    pub token_auth_file: Option<PathBuf>,
    /// Extra client CA bundles (the seeds' `--client-ca-file`); the appliance CA is always trusted.
    pub client_ca_files: Vec<PathBuf>,
    /// Groups whose members are administrators (read all, approve, deny, delete);
    /// `kube-apiserver-client` CSRs naming one of them (or `system:masters`) in O are refused at
    /// create.
    pub admin_groups: Vec<String>,
    /// Users who are administrators.
    pub admin_users: Vec<String>,
    /// Groups whose members may create kubelet client CSRs (bootstrap requesters). An entry
    /// ending in `*` matches every group with that prefix.
    pub bootstrap_groups: Vec<String>,
    /// Kubernetes RBAC manifests (multi-document YAML: ClusterRole, ClusterRoleBinding, Role,
    /// RoleBinding) granting what the built-in matrix does not. Used in external-signing mode
    /// only; an invalid manifest is a configuration error.
    pub rbac_manifests: Vec<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_auth_file: None,
            client_ca_files: Vec::new(),
            admin_groups: vec!["system:masters".to_owned()],
            admin_users: Vec::new(),
            bootstrap_groups: vec![
                "system:bootstrappers".to_owned(),
                "system:bootstrappers:*".to_owned(),
                "system:kubelet-bootstrap".to_owned(),
            ],
            rbac_manifests: Vec::new(),
        }
    }
}

/// `[issuance]`: which signer names are served, certificate lifetime, the auto-approved groups
/// and the node inventory. Every key has a default, so the section may be left out. (Admin and
/// bootstrap groups are `[auth]`'s.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuanceConfig {
    /// Longest certificate lifetime (the seeds' `--cluster-signing-duration`; default 8760h).
    #[serde(with = "humantime_serde_compat")]
    pub max_ttl: Duration,
    /// Signer names served. Default: the two kubelet signers; add
    /// `kubernetes.io/kube-apiserver-client` to enable it (admin approval only).
    pub signers: Vec<String>,
    /// Groups whose bootstrap client CSRs are auto-approved (glob patterns). A static-token
    /// group is auto-approved only when listed here (the seeds'
    /// `--insecure-experimental-approve-all-kubelet-csrs-for-group`).
    pub auto_approve_groups: Vec<String>,
    /// Node inventory (TOML: node name → addresses, CIDRs, DNS names) for serving-certificate
    /// SAN checks; without it serving CSRs wait for an admin.
    pub node_inventory: Option<PathBuf>,
    /// Trust on first use: record the peer IP of the connection that creates a node's first
    /// bootstrap client CSR and count it as an inventory address of that node (off by
    /// default: a stolen bootstrap token used first fixes the attacker's address, and behind
    /// NAT or a proxy every node shares one address).
    pub record_first_bootstrap_address: bool,
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        IssuanceConfig {
            max_ttl: Duration::from_secs(8760 * 3600),
            signers: s(&[
                "kubernetes.io/kube-apiserver-client-kubelet",
                "kubernetes.io/kubelet-serving",
            ]),
            auto_approve_groups: s(&["system:bootstrappers", "system:bootstrappers:*"]),
            node_inventory: None,
            record_first_bootstrap_address: false,
        }
    }
}

fn default_sign_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_sessions() -> usize {
    crate::signer::Settings::default().max_sessions
}

fn default_keepalive_interval() -> Duration {
    crate::signer::Settings::default().keepalive_interval
}

fn max_sessions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if (1..=crate::signer::MAX_SESSIONS_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(
            "max_sessions must be from 1 to 64",
        ))
    }
}

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type, ...).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
}

impl Config {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// `humantime` durations ("5s", "24h") in serde.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;

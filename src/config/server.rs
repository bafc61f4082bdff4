//! `[server]`: the HTTPS API's listen address, serving certificate, bounds and deadlines.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default time allowed for a request's body once its headers have arrived.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    #[serde(with = "super::duration")]
    pub serving_cert_ttl: Duration,
    /// Largest request body in bytes (413 beyond; kube-apiserver allows about 3 MiB).
    pub max_body_bytes: usize,
    /// Concurrent watches (429 beyond).
    pub max_watches: usize,
    /// Longest watch; longer `timeoutSeconds` are cut to it.
    #[serde(with = "super::duration")]
    pub max_watch_timeout: Duration,
    /// Concurrent connections; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Requests handled at once (health probes excepted); further ones get 429 with
    /// `Retry-After` (kube-apiserver's `--max-requests-inflight` default is 400).
    pub max_requests_in_flight: usize,
    /// Time allowed for the TLS handshake (from accept).
    #[serde(with = "super::duration")]
    pub handshake_timeout: Duration,
    /// Time allowed for a request's headers to arrive (slow-header clients are cut off); on a
    /// new connection, from the end of the TLS handshake to the first request's headers, on
    /// HTTP/1.1 and HTTP/2 alike (protocol detection included).
    #[serde(with = "super::duration")]
    pub header_read_timeout: Duration,
    /// Time allowed for a request's body to arrive once its headers have (slow-body clients
    /// are answered 400 and lose their request slot).
    #[serde(with = "super::duration")]
    pub body_read_timeout: Duration,
    /// Concurrent connections from one source address (further ones are closed at once), so
    /// one host cannot hold every connection slot. Default: a quarter of `max_connections`.
    pub max_connections_per_address: Option<usize>,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive
    /// and HTTP/2 alike; a watch is a request in flight).
    #[serde(with = "super::duration")]
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings; a peer that does not answer one within the same
    /// interval is disconnected.
    #[serde(with = "super::duration")]
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
    /// External-signing mode (docs/deployment.md): CSRs are stored and served but never auto-approved
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
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
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

//! Prometheus metrics (text exposition format), one process-wide registry.
//!
//! `/metrics` is served anonymously, like `/healthz` (kube-apiserver gates it behind RBAC; here
//! it carries no CSR contents, names or secrets: only counts, latencies and expiry times, so a
//! scraper needs no credential). See SECURITY.md (M-OPS-METRICS).

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Days before the CA's `notAfter` at which `kubesigner_ca_expiry_alert` turns 1 (the
/// `KubesignerCACertificateExpiring` alert in deploy/prometheus).
pub const CA_ALERT_DAYS: i64 = 90;

/// Labels of `kubesigner_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// The HTTP status code.
    pub code: u16,
}

/// Labels of `kubesigner_auth_failures_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Why: `unauthenticated`, `forbidden`, ….
    pub kind: &'static str,
}

/// Labels of `kubesigner_slots_in_use`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlotLabels {
    /// The pool: `requests` (`[server] max_requests_in_flight`) or `watches` (`max_watches`).
    pub pool: &'static str,
    /// Who holds them: `admin`, `user` (any other authenticated identity) or `anonymous`.
    pub class: &'static str,
}

/// Labels of `kubesigner_connections_refused_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `per_address_cap`, `first_request_deadline`, `idle_timeout`, `handshake_timeout`.
    pub reason: &'static str,
}

/// Labels of `kubesigner_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The semantic version (`Cargo.toml`).
    pub version: &'static str,
    /// The commit it was built from (`build.rs`), or `unknown`.
    pub commit: &'static str,
}

/// Every metric of the appliance.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by status code.
    pub requests: Family<CodeLabels, Counter>,
    /// Time from an approved CSR to its issued certificate (validation, signing, store).
    pub issuance_seconds: Histogram,
    /// Time of one signature by the token.
    pub token_sign_seconds: Histogram,
    /// 1 while every token signer has a working session.
    pub hsm_up: Gauge,
    /// PKCS#11 signing sessions checked out of the pool now (not calls waiting for one).
    pub sessions_in_use: Gauge,
    /// CSRs neither approved nor denied.
    pub pending_csrs: Gauge,
    /// Refused requests, by kind.
    pub auth_failures: Family<KindLabels, Counter>,
    /// The CA certificate's `notAfter` (Unix seconds).
    pub ca_not_after: Gauge,
    /// The serving certificate's `notAfter` (Unix seconds).
    pub serving_not_after: Gauge,
    /// 1 when the CA expires within [`CA_ALERT_DAYS`].
    pub ca_expiry_alert: Gauge,
    /// Signed audit checkpoints appended.
    pub audit_checkpoints: Counter,
    /// SIGHUP reloads, by result (`ok`, `failed`).
    pub reloads: Family<ResultLabels, Counter>,
    /// Request and watch slots held now, by pool and class (saturation by class).
    pub slots_in_use: Family<SlotLabels, Gauge>,
    /// Connections closed by the edge, by reason.
    pub connections_closed: Family<ReasonLabels, Counter>,
    /// Signatures made with a CA key (every purpose), counted at the signer; equals the audit
    /// log's signature records.
    pub ca_signatures: Counter,
    /// Token signatures that failed (session, device or verification error; not refusals while
    /// the signer is already down).
    pub token_sign_errors: Counter,
    /// Approved CSRs without a certificate yet (the signer backlog), read at scrape time.
    pub approved_unsigned: Gauge,
    /// API requests holding one of the `[server] max_requests_in_flight` slots now.
    pub requests_in_flight: Gauge,
    /// `[server] max_requests_in_flight`.
    pub requests_in_flight_limit: Gauge,
    /// When the checkpointer last left the audit chain covered by a signed checkpoint (Unix
    /// seconds; set to the start time when it starts).
    pub audit_checkpoint_ok: Gauge,
    /// `[audit] checkpoint_interval` in seconds while the checkpointer runs (0: not running).
    pub audit_checkpoint_interval: Gauge,
    /// Always 1, labelled with the version and commit.
    pub build_info: Family<BuildLabels, Gauge>,
    /// Controller, active-active: live members in this replica's view (0 while it is not one).
    pub controller_members: Gauge,
    /// Controller, active-active: CSRs needing work that this replica owned at its last list.
    pub controller_csrs_owned: Gauge,
    /// Controller, active-active: claim attempts, by result (`won`, `lost`, `deferred`).
    pub controller_claims: Family<ResultLabels, Counter>,
    /// Controller: signatures made and never written (`signature_discarded` audit records).
    pub controller_signatures_discarded: Counter,
}

/// Label set for [`Metrics::reloads`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `failed`.
    pub result: &'static str,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 0.5 ms … ~16 s: SoftHSM signs in about a millisecond, a network HSM in tens.
    exponential_buckets(0.0005, 2.0, 16)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kubesigner");
        let m = Metrics {
            requests: Family::default(),
            issuance_seconds: Histogram::new(latency_buckets()),
            token_sign_seconds: Histogram::new(latency_buckets()),
            hsm_up: Gauge::default(),
            sessions_in_use: Gauge::default(),
            pending_csrs: Gauge::default(),
            auth_failures: Family::default(),
            ca_not_after: Gauge::default(),
            serving_not_after: Gauge::default(),
            ca_expiry_alert: Gauge::default(),
            audit_checkpoints: Counter::default(),
            reloads: Family::default(),
            slots_in_use: Family::default(),
            connections_closed: Family::default(),
            ca_signatures: Counter::default(),
            token_sign_errors: Counter::default(),
            approved_unsigned: Gauge::default(),
            requests_in_flight: Gauge::default(),
            requests_in_flight_limit: Gauge::default(),
            audit_checkpoint_ok: Gauge::default(),
            audit_checkpoint_interval: Gauge::default(),
            build_info: Family::default(),
            controller_members: Gauge::default(),
            controller_csrs_owned: Gauge::default(),
            controller_claims: Family::default(),
            controller_signatures_discarded: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "http_requests",
            "Requests answered, by status code",
            m.requests.clone(),
        );
        r.register(
            "issuance_seconds",
            "Approved CSR to issued certificate",
            m.issuance_seconds.clone(),
        );
        r.register(
            "token_sign_seconds",
            "One signature by the PKCS#11 token",
            m.token_sign_seconds.clone(),
        );
        r.register(
            "hsm_up",
            "1 while every token signer has a working session",
            m.hsm_up.clone(),
        );
        r.register(
            "token_sessions_in_use",
            "PKCS#11 signing sessions checked out of the pool",
            m.sessions_in_use.clone(),
        );
        r.register(
            "pending_csrs",
            "CSRs neither approved nor denied",
            m.pending_csrs.clone(),
        );
        r.register(
            "auth_failures",
            "Refused requests, by kind",
            m.auth_failures.clone(),
        );
        r.register(
            "ca_not_after_timestamp_seconds",
            "CA certificate notAfter",
            m.ca_not_after.clone(),
        );
        r.register(
            "serving_cert_not_after_timestamp_seconds",
            "Serving certificate notAfter",
            m.serving_not_after.clone(),
        );
        r.register(
            "ca_expiry_alert",
            "1 when the CA expires within 90 days",
            m.ca_expiry_alert.clone(),
        );
        r.register(
            "audit_checkpoints",
            "Signed audit checkpoints appended",
            m.audit_checkpoints.clone(),
        );
        r.register("reloads", "SIGHUP reloads, by result", m.reloads.clone());
        r.register(
            "slots_in_use",
            "Request and watch slots held, by pool and class",
            m.slots_in_use.clone(),
        );
        r.register(
            "connections_closed",
            "Connections closed by the edge, by reason",
            m.connections_closed.clone(),
        );
        r.register(
            "ca_signatures",
            "Signatures made with a CA key, every purpose",
            m.ca_signatures.clone(),
        );
        m.register_operations(r);
        m.register_controller(r);
        Metrics { registry, ..m }
    }

    /// The families the alert rules and the dashboard need beyond the first set
    /// (deploy/prometheus, deploy/grafana).
    fn register_operations(&self, r: &mut Registry) {
        // Every known label value starts at 0, so the families are exported before their first
        // event and `increase()` sees the first one.
        for kind in ["unauthenticated", "forbidden"] {
            drop(self.auth_failures.get_or_create(&KindLabels { kind }));
        }
        for result in ["ok", "failed"] {
            drop(self.reloads.get_or_create(&ResultLabels { result }));
        }
        r.register(
            "token_sign_errors",
            "Token signatures that failed (session, device or verification error)",
            self.token_sign_errors.clone(),
        );
        r.register(
            "approved_unsigned_csrs",
            "Approved CSRs without a certificate yet (the signer backlog)",
            self.approved_unsigned.clone(),
        );
        r.register(
            "requests_in_flight",
            "API requests holding a request slot",
            self.requests_in_flight.clone(),
        );
        r.register(
            "requests_in_flight_limit",
            "Request slots ([server] max_requests_in_flight)",
            self.requests_in_flight_limit.clone(),
        );
        r.register(
            "audit_last_checkpoint_timestamp_seconds",
            "When the audit chain was last covered by a signed checkpoint",
            self.audit_checkpoint_ok.clone(),
        );
        r.register(
            "audit_checkpoint_interval_seconds",
            "[audit] checkpoint_interval while the checkpointer runs, else 0",
            self.audit_checkpoint_interval.clone(),
        );
        self.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("KUBESIGNER_GIT_REV"),
            })
            .set(1);
        r.register(
            "build_info",
            "Always 1: the version and commit running",
            self.build_info.clone(),
        );
    }

    /// The controller's families (`kubesigner controller --metrics-address`).
    fn register_controller(&self, r: &mut Registry) {
        for result in ["won", "lost", "deferred"] {
            drop(
                self.controller_claims
                    .get_or_create(&ResultLabels { result }),
            );
        }
        r.register(
            "controller_members",
            "Active-active: live members in this replica's view (0: not a member)",
            self.controller_members.clone(),
        );
        r.register(
            "controller_csrs_owned",
            "Active-active: CSRs needing work owned by this replica at its last list",
            self.controller_csrs_owned.clone(),
        );
        r.register(
            "controller_claims",
            "Active-active: claim attempts, by result (won, lost, deferred)",
            self.controller_claims.clone(),
        );
        r.register(
            "controller_signatures_discarded",
            "Controller: signatures made and never written (audited signature_discarded)",
            self.controller_signatures_discarded.clone(),
        );
    }

    /// Counts one claim attempt (`won`, `lost`, `deferred`).
    pub fn claim(&self, result: &'static str) {
        self.controller_claims
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Records the CA's `notAfter` and sets the 90-day alert from `now_unix`.
    pub fn set_ca_not_after(&self, not_after_unix: i64, now_unix: i64) {
        self.ca_not_after.set(not_after_unix);
        let alert = not_after_unix.saturating_sub(now_unix) < CA_ALERT_DAYS * 86_400;
        self.ca_expiry_alert.set(i64::from(alert));
    }

    /// Records one token signature.
    pub fn observe_sign(&self, took: Duration) {
        self.token_sign_seconds.observe(took.as_secs_f64());
    }

    /// The text exposition (`text/plain; version=0.0.4` compatible OpenMetrics text).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests;

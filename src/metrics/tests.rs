use super::*;

#[test]
fn renders_every_family_and_the_ca_alert() {
    let m = Metrics::new();
    m.requests.get_or_create(&CodeLabels { code: 201 }).inc();
    m.set_ca_not_after(1_000 + 89 * 86_400, 1_000);
    let text = m.render();
    assert!(
        text.contains("kubesigner_http_requests_total{code=\"201\"} 1"),
        "{text}"
    );
    assert!(text.contains("kubesigner_ca_expiry_alert 1"), "{text}");
    m.set_ca_not_after(1_000 + 91 * 86_400, 1_000);
    assert!(m.render().contains("kubesigner_ca_expiry_alert 0"));
    for name in [
        "issuance_seconds_bucket",
        "token_sign_seconds",
        "hsm_up",
        "pending_csrs",
        "token_sign_errors_total",
        "approved_unsigned_csrs",
        "requests_in_flight_limit",
        "audit_last_checkpoint_timestamp_seconds",
        "audit_checkpoint_interval_seconds",
        "kubesigner_build_info{version=",
    ] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
}

//! `/metrics`: scraped anonymously from a running `kubesigner dev`, in Prometheus text format,
//! with every family of issue 9 and request counts that move with real requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::process::Command;

use appliance::*;

fn scrape(a: &Appliance) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(a.state().join("ca.crt"))
        .arg(format!("https://{}/metrics", a.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn metrics_scrape_has_every_family() {
    let a = Appliance::start();
    kubectl_ok(&a.admin_kubeconfig(), &["get", "csr"]);
    // An unauthenticated CSR list: a 401 and an auth failure.
    let _ = Command::new("curl")
        .args(["-sS", "-k"])
        .arg(format!(
            "https://{}/apis/certificates.k8s.io/v1/certificatesigningrequests",
            a.addr
        ))
        .output()
        .unwrap();
    let text = scrape(&a);
    for family in [
        "kubesigner_http_requests_total{code=\"200\"}",
        "kubesigner_http_requests_total{code=\"401\"}",
        "kubesigner_auth_failures_total{kind=\"unauthenticated\"}",
        "kubesigner_issuance_seconds_bucket",
        "kubesigner_token_sign_seconds_bucket",
        "kubesigner_hsm_up 1",
        "kubesigner_token_sessions_in_use",
        "kubesigner_pending_csrs",
        "kubesigner_ca_not_after_timestamp_seconds",
        "kubesigner_serving_cert_not_after_timestamp_seconds",
        "kubesigner_ca_expiry_alert 0",
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }
    let value = |name: &str| -> i64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(value("kubesigner_ca_not_after_timestamp_seconds") > now + 90 * 86_400);
    assert!(value("kubesigner_serving_cert_not_after_timestamp_seconds") > now);
    // The serving certificate was signed by the token: at least one signature observed.
    assert!(value("kubesigner_token_sign_seconds_count") >= 1, "{text}");
}

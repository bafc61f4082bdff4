//! No CA-key signature escapes the audit: the signer counts every signature it releases
//! (`kubesigner_ca_signatures_total`) and the audit log holds one signature record for each
//! (the CA's self-signature and the admin certificate from `kubesigner dev`, the serving
//! certificate at start, every node certificate). About 5 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::ops;

use std::time::{Duration, Instant};

use ops::{Served, kubectl_ok};

/// The signature kinds (`kubesigner::audit::Kind::is_signature`).
fn signature_records(export: &str) -> Vec<serde_json::Value> {
    export
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| {
            r["kind"]
                .as_str()
                .and_then(|k| k.parse::<kubesigner::audit::Kind>().ok())
                .is_some_and(|k| k.is_signature())
        })
        .collect()
}

fn counter(s: &Served) -> u64 {
    let text = kubectl_ok(&s.admin(), &["get", "--raw", "/metrics"]);
    text.lines()
        .find_map(|l| l.strip_prefix("kubesigner_ca_signatures_total "))
        .unwrap_or_else(|| panic!("no signature counter in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn every_ca_signature_has_an_audit_record() {
    let mut s = Served::setup("");
    // `kubesigner dev` signed the CA certificate and the admin certificate.
    let setup = signature_records(&s.export());
    let kinds: Vec<&str> = setup.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ca-self-signed", "admin-certificate"], "{setup:?}");
    for r in &setup {
        assert!(r["serial"].as_str().is_some_and(|v| !v.is_empty()), "{r}");
        assert!(r["subject"].as_str().is_some_and(|v| !v.is_empty()), "{r}");
    }
    s.start();
    s.create_csr("sig-one", "node1");
    s.create_csr("sig-two", "node2");
    kubectl_ok(
        &s.admin(),
        &["certificate", "approve", "sig-one", "sig-two"],
    );
    // The serving certificate and two node certificates.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter(&s) < 3 {
        assert!(Instant::now() < deadline, "certificates not issued");
        std::thread::sleep(Duration::from_millis(200));
    }
    let made = counter(&s);
    let records = signature_records(&s.export());
    let by_serve: Vec<&serde_json::Value> = records[setup.len()..].iter().collect();
    assert_eq!(
        by_serve.len() as u64,
        made,
        "signatures made by serve: {made}, signature records: {by_serve:?}"
    );
    assert_eq!(by_serve[0]["kind"], "serving-certificate", "{by_serve:?}");
    assert_eq!(
        by_serve.iter().filter(|r| r["kind"] == "issue").count(),
        2,
        "{by_serve:?}"
    );
    s.stop();
}

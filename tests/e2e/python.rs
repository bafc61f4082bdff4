//! The official Python `kubernetes` client against `kubesigner dev`: create, list, watch, approve
//! via `replace_certificate_signing_request_approval`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::process::Command;

use appliance::*;

#[test]
fn python_client_creates_lists_watches_and_approves() {
    let a = Appliance::start();
    let (_k, csr) = openssl_csr(
        a.dir.path(),
        "py",
        "/O=system:nodes/CN=system:node:py1",
        Some("DNS:py1.example.com,IP:192.0.2.44"),
    );
    let csr_file = a.dir.path().join("py.csr");
    std::fs::write(&csr_file, csr).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_compat.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(a.admin_kubeconfig())
        .arg(&csr_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "python client: {stdout}\n{}\nappliance log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        a.log()
    );
}

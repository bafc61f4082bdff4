//! Outside checks on issued certificates: `openssl verify` and pkilint.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// `openssl verify -CAfile ca [-untrusted chain] leaf`; panics with openssl's output on failure.
pub fn openssl_verify(dir: &Path, ca_pem: &str, leaf_chain_pem: &str, purpose: Option<&str>) {
    let ca = dir.join("verify-ca.pem");
    let leaf = dir.join("verify-leaf.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&leaf, leaf_chain_pem).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(&ca);
    if let Some(p) = purpose {
        cmd.args(["-purpose", p]);
    }
    // The chain after the leaf (intermediates) is offered as untrusted.
    let out = cmd
        .arg("-untrusted")
        .arg(&leaf)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `lint_pkix_cert lint -s WARNING` on a PEM certificate; returns the finding codes.
pub fn pkilint(dir: &Path, name: &str, cert_pem: &str) -> Vec<String> {
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, cert_pem).unwrap();
    let out = Command::new("lint_pkix_cert")
        .args(["lint", "-s", "WARNING"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // Findings are indented lines: "    <code> (<SEVERITY>)...".
    let codes: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(
        out.status.success() || !codes.is_empty(),
        "pkilint failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    codes
}

/// First PEM block of a chain.
pub fn first_pem(chain: &str) -> String {
    let end = "-----END CERTIFICATE-----";
    let i = chain.find(end).unwrap() + end.len();
    format!("{}\n", &chain[..i])
}

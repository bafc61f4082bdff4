//! The seeds' flow as one test against `kubesigner dev` (SoftHSM token, CA key in the token):
//! a bootstrap token created with `kubesigner token create` → `kubesigner bootstrap` → CSR
//! auto-approved → cert dir and kubeconfig written → the real `kubectl` with the node's
//! credentials sees only the node's CSRs → rotation renews with the node certificate → a
//! serving certificate, pending until the admin approves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::process::{Command, Stdio};
use std::time::Duration;

use appliance::*;

fn bootstrap_kubeconfig_with(
    a: &Appliance,
    dir: &std::path::Path,
    token: &str,
) -> std::path::PathBuf {
    // The dev bootstrap kubeconfig with its token swapped for a freshly created one.
    let text = std::fs::read_to_string(a.bootstrap_kubeconfig()).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token: "))
        .unwrap();
    let p = dir.join("bootstrap.kubeconfig");
    std::fs::write(&p, text.replace(line, &format!("    token: {token}"))).unwrap();
    p
}

#[test]
fn seeds_flow_against_kubesigner_dev() {
    let a = Appliance::start();
    let token = Command::new(bin())
        .args(["token", "create", "--ttl", "1h", "--config"])
        .arg(a.state().join("kubesigner.toml"))
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let node = tempfile::tempdir().unwrap();
    let boot = bootstrap_kubeconfig_with(&a, node.path(), &token);
    let out_kc = node.path().join("kubelet.conf");
    let pki = node.path().join("pki");
    let log = node.path().join("bootstrap.log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(bin())
        .arg("bootstrap")
        .arg("--experimental-bootstrap-kubeconfig")
        .arg(&boot)
        .arg("--kubeconfig")
        .arg(&out_kc)
        .arg("--cert-dir")
        .arg(&pki)
        .args(["--node-name", "node1", "--test-renew-after", "1500ms"])
        .args([
            "--serving",
            "--address",
            "127.0.0.1",
            "--hostname",
            "node1.test",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(logf.try_clone().unwrap()))
        .stderr(Stdio::from(logf))
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // Client certificate: auto-approved, written, kubeconfig usable by kubectl.
    appliance::tools::wait_for_some("the client certificate", Duration::from_secs(60), || {
        std::fs::read_link(pki.join("kubelet-client-current.pem")).ok()
    });
    appliance::tools::wait_for_some("the node kubeconfig", Duration::from_secs(10), || {
        out_kc.exists().then_some(())
    });
    let pair = pki.join("kubelet-client-current.pem");
    let findings = check_certificate(
        node.path(),
        &std::fs::read_to_string(&pair).unwrap(),
        &a.state().join("ca.crt"),
        &[],
    );
    assert!(findings.is_empty(), "pkilint: {findings:?}");
    let subject = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
            "-nameopt",
            "RFC2253",
            "-in",
        ])
        .arg(&pair)
        .output()
        .unwrap();
    let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
    assert!(
        subject.contains("subject=CN=system:node:node1,O=system:nodes"),
        "{subject}"
    );
    assert!(
        !subject.contains("DNS:") && !subject.contains("IP Address"),
        "{subject}"
    );

    // The serving CSR waits for the admin (a SAN the appliance cannot vouch for on its own).
    let serving = appliance::tools::wait_for_some(
        "a pending serving CSR",
        Duration::from_secs(60),
        || {
            let out = kubectl_ok(
                &a.admin_kubeconfig(),
                &[
                    "get",
                    "csr",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name} {.spec.signerName} {.status.conditions[*].type}{\"\\n\"}{end}",
                ],
            );
            out.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|p| p.len() == 2 && p[1] == "kubernetes.io/kubelet-serving")
                .map(|p| p[0].to_string())
        },
    );
    kubectl_ok(&a.admin_kubeconfig(), &["certificate", "approve", &serving]);
    appliance::tools::wait_for_some("the serving certificate", Duration::from_secs(60), || {
        std::fs::read_link(pki.join("kubelet-server-current.pem")).ok()
    });

    // Rotation: renewals are `csr-` CSRs requested by the node itself.
    let renewals = appliance::tools::wait_for_some(
        "two client renewals",
        Duration::from_secs(60),
        || {
            let out = kubectl_ok(
                &a.admin_kubeconfig(),
                &[
                    "get",
                    "csr",
                    "-o",
                    "jsonpath={range .items[*]}{.metadata.name} {.spec.signerName} {.spec.username}{\"\\n\"}{end}",
                ],
            );
            let r: Vec<String> = out
                .lines()
                .filter(|l| l.starts_with("csr-") && l.contains("kube-apiserver-client-kubelet"))
                .map(str::to_owned)
                .collect();
            (r.len() >= 2).then_some(r)
        },
    );
    for r in &renewals {
        assert!(r.ends_with(" system:node:node1"), "{r}");
    }

    // kubectl with the node's kubeconfig: only the node's own CSRs.
    let mine = kubectl_ok(&out_kc, &["get", "csr", "-o", "name"]);
    let all = kubectl_ok(&a.admin_kubeconfig(), &["get", "csr", "-o", "name"]);
    assert!(!mine.trim().is_empty());
    for name in mine.lines() {
        assert!(all.contains(name), "{name}");
    }
    // Another requester's CSR exists and the node does not see it.
    let (_k, csr) = openssl_csr(
        node.path(),
        "other",
        "/O=system:nodes/CN=system:node:node2",
        None,
    );
    let f = node.path().join("other.yaml");
    std::fs::write(
        &f,
        csr_manifest(
            "other-node-csr",
            &csr,
            "kubernetes.io/kube-apiserver-client-kubelet",
            &["digital signature", "client auth"],
        ),
    )
    .unwrap();
    kubectl_ok(
        &a.admin_kubeconfig(),
        &["create", "-f", f.to_str().unwrap()],
    );
    let mine = kubectl_ok(&out_kc, &["get", "csr", "-o", "name"]);
    assert!(!mine.contains("other-node-csr"), "{mine}");
    let _ = child.kill();
    let _ = child.wait();
    assert!(read_log().contains("certificate renewed"), "{}", read_log());
}

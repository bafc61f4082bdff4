//! No secret in any log: a full dev run (create a bootstrap token, bootstrap a node with it,
//! auto-approve the client CSR, admin-approve the serving CSR) and then grep the appliance's,
//! the bootstrap's and the token command's output for the PIN, the SO PIN and every token
//! secret (whole and secret part alone), and for private-key material (the node's keys and the
//! admin kubeconfig's key). Every process logs at `debug`, then in a second run at `trace`
//! (`KUBESIGNER_LOG`, the variable the program reads). About 10 s each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::process::{Command, Stdio};
use std::time::Duration;

use appliance::*;

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn read_trimmed(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_owned()
}

/// Base64 lines (≥ 20 characters) of every PEM private key in `text`.
fn key_lines(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with("-----BEGIN") && l.contains("PRIVATE KEY") {
            inside = true;
        } else if l.starts_with("-----END") {
            inside = false;
        } else if inside && l.len() >= 20 {
            out.push(l.to_owned());
        }
    }
    out
}

#[test]
fn full_dev_run_logs_no_secret_at_debug() {
    full_dev_run_logs_no_secret("debug");
}

#[test]
fn full_dev_run_logs_no_secret_at_trace() {
    full_dev_run_logs_no_secret("trace");
}

fn full_dev_run_logs_no_secret(level: &str) {
    let a = Appliance::start_with_env(&[], &[("KUBESIGNER_LOG", level)]);
    let cfg = a.state().join("kubesigner.toml");
    let created = Command::new(bin())
        .args(["token", "create", "--ttl", "1h", "--config"])
        .arg(&cfg)
        .env("KUBESIGNER_LOG", level)
        .output()
        .unwrap();
    assert!(created.status.success());
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();

    // The dev bootstrap kubeconfig with the new token.
    let node = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(a.bootstrap_kubeconfig()).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token: "))
        .unwrap();
    let boot = node.path().join("bootstrap.kubeconfig");
    std::fs::write(&boot, text.replace(line, &format!("    token: {token}"))).unwrap();
    let blog = node.path().join("bootstrap.log");
    let logf = std::fs::File::create(&blog).unwrap();
    let pki = node.path().join("pki");
    let mut child = Command::new(bin())
        .arg("bootstrap")
        .arg("--experimental-bootstrap-kubeconfig")
        .arg(&boot)
        .arg("--kubeconfig")
        .arg(node.path().join("kubelet.conf"))
        .arg("--cert-dir")
        .arg(&pki)
        .args([
            "--node-name",
            "node1",
            "--serving",
            "--address",
            "127.0.0.1",
        ])
        .args(["--hostname", "node1.test"])
        .env("KUBESIGNER_LOG", level)
        .stdin(Stdio::null())
        .stdout(Stdio::from(logf.try_clone().unwrap()))
        .stderr(Stdio::from(logf))
        .spawn()
        .unwrap();
    appliance::tools::wait_for_some("the client certificate", Duration::from_secs(60), || {
        std::fs::read_link(pki.join("kubelet-client-current.pem")).ok()
    });
    let serving =
        appliance::tools::wait_for_some("the serving CSR", Duration::from_secs(60), || {
            let out = kubectl_ok(&a.admin_kubeconfig(), &["get", "csr", "-o", "name"]);
            let csrs: Vec<String> = out.lines().map(str::to_owned).collect();
            csrs.into_iter().find(|n| {
                kubectl_ok(
                    &a.admin_kubeconfig(),
                    &["get", n, "-o", "jsonpath={.spec.signerName}"],
                )
                .contains("kubelet-serving")
            })
        });
    let serving = serving.trim_start_matches("certificatesigningrequest.certificates.k8s.io/");
    kubectl_ok(&a.admin_kubeconfig(), &["certificate", "approve", serving]);
    appliance::tools::wait_for_some("the serving certificate", Duration::from_secs(60), || {
        std::fs::read_link(pki.join("kubelet-server-current.pem")).ok()
    });
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();

    let mut secrets = vec![
        read_trimmed(&a.state().join("pin")),
        read_trimmed(&a.state().join("so-pin")),
        read_trimmed(&a.state().join("bootstrap-token")),
        token.clone(),
    ];
    for t in [read_trimmed(&a.state().join("bootstrap-token")), token] {
        if let Some((_, secret)) = t.split_once('.') {
            secrets.push(secret.to_owned());
        }
    }
    // Key material: the node's private keys and the admin kubeconfig's client key.
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(&pki).unwrap() {
        let p = entry.unwrap().path();
        if let Ok(text) = std::fs::read_to_string(&p) {
            keys.extend(key_lines(&text));
        }
    }
    assert!(keys.len() >= 2, "no node key found in {}", pki.display());
    let admin = std::fs::read_to_string(a.admin_kubeconfig()).unwrap();
    let admin_key = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-key-data: "))
        .unwrap()
        .to_owned();
    let admin_key_pem = String::from_utf8(base64_decode(&admin_key)).unwrap();
    keys.extend(key_lines(&admin_key_pem));
    secrets.push(admin_key);
    secrets.extend(keys);
    let logs = [
        ("appliance", a.log()),
        ("bootstrap", std::fs::read_to_string(&blog).unwrap()),
        (
            "token create",
            String::from_utf8_lossy(&created.stderr).into_owned(),
        ),
    ];
    assert!(logs[0].1.contains("serving"), "the appliance log is empty");
    // The level really took effect: debug lines are there (and trace lines at trace).
    assert!(
        logs[0].1.contains("DEBUG"),
        "no debug line in the appliance log"
    );
    assert!(
        logs[1].1.contains("DEBUG"),
        "no debug line in the bootstrap log"
    );
    if level == "trace" {
        assert!(
            logs[0].1.contains("TRACE"),
            "no trace line in the appliance log"
        );
    }
    for (name, log) in &logs {
        for s in &secrets {
            assert!(s.len() >= 6, "secret too short to grep for: {s:?}");
            assert!(
                !log.contains(s.as_str()),
                "the {name} log contains a secret"
            );
        }
    }
}

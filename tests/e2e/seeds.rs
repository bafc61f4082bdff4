//! The seeds' 1.4 flow, end to end over HTTPS with the real binaries: a static token file with
//! the seeds' line, `serve --token-auth-file` with and without
//! `--insecure-experimental-approve-all-kubelet-csrs-for-group system:kubelet-bootstrap`, and a
//! node bootstrapping with that token (`kubesigner bootstrap`). With the flag the node gets its
//! certificate; without it the CSR waits for an admin, who approves it with kubectl.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use appliance::*;

const SEED_TOKEN: &str = "02b50b05283e98dd0fd71db496ef01e8";

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn setup(dir: &Path, addr: &str) {
    dev_setup(dir, addr, &[]);
    std::fs::write(
        dir.join("tokens.csv"),
        format!("{SEED_TOKEN},kubelet-bootstrap,10001,\"system:kubelet-bootstrap\"\n"),
    )
    .unwrap();
    // The node's bootstrap kubeconfig: the dev one with the seeds' static token instead.
    let text = std::fs::read_to_string(dir.join("bootstrap.kubeconfig")).unwrap();
    let seeded: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("token: ") {
                format!("    token: {SEED_TOKEN}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(dir.join("seed.kubeconfig"), seeded).unwrap();
}

fn serve(dir: &Path, extra: &[&str]) -> Serve {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--config".into(),
        dir.join("kubesigner.toml").display().to_string(),
        "--token-auth-file".into(),
        dir.join("tokens.csv").display().to_string(),
    ];
    // Tests and CI run as root; serve refuses root without it.
    args.push("--allow-root".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(bin())
        .args(&args)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let s = Serve(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !kubectl(&dir.join("admin.kubeconfig"), &["get", "--raw", "/readyz"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "serve not ready: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    s
}

fn bootstrap(dir: &Path, node: &str, wait: &str) -> std::process::Output {
    Command::new(bin())
        .args([
            "bootstrap",
            "--once",
            "--node-name",
            node,
            "--wait-timeout",
            wait,
        ])
        .arg("--bootstrap-kubeconfig")
        .arg(dir.join("seed.kubeconfig"))
        .arg("--kubeconfig")
        .arg(dir.join(format!("{node}.kubeconfig")))
        .arg("--cert-dir")
        .arg(dir.join(format!("{node}-pki")))
        .output()
        .unwrap()
}

#[test]
fn seeds_static_token_with_the_group_flag_is_auto_approved() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let addr = format!("127.0.0.1:{}", appliance::free_port());
    setup(dir, &addr);
    let _s = serve(
        dir,
        &[
            "--insecure-experimental-approve-all-kubelet-csrs-for-group",
            "system:kubelet-bootstrap",
        ],
    );
    let out = bootstrap(dir, "seed-node-1", "30s");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = dir.join("seed-node-1-pki/kubelet-client-current.pem");
    let v = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("ca.crt"))
        .arg(&cert)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let row = kubectl_ok(
        &dir.join("admin.kubeconfig"),
        &["get", "csr", "--no-headers"],
    );
    assert!(
        row.contains("kubelet-bootstrap") && row.trim_end().ends_with("Approved,Issued"),
        "{row}"
    );
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(
        log.contains("insecure-experimental-approve-all-kubelet-csrs-for-group"),
        "the alias is warned about"
    );
    assert!(!log.contains(SEED_TOKEN), "the token must never be logged");
}

#[test]
fn seeds_static_token_without_the_flag_waits_for_an_admin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let addr = format!("127.0.0.1:{}", appliance::free_port());
    setup(dir, &addr);
    let _s = serve(dir, &[]);
    let out = bootstrap(dir, "seed-node-2", "3s");
    assert!(!out.status.success(), "no certificate without approval");
    let admin = dir.join("admin.kubeconfig");
    let row = kubectl_ok(&admin, &["get", "csr", "--no-headers"]);
    assert!(
        row.contains("kubelet-bootstrap") && row.trim_end().ends_with("Pending"),
        "{row}"
    );
    let name = row.split_whitespace().next().unwrap().to_owned();
    kubectl_ok(&admin, &["certificate", "approve", &name]);
    // The node's next attempt reuses its CSR (409 → same key, same name) and gets the certificate.
    let out = bootstrap(dir, "seed-node-2", "30s");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join("seed-node-2-pki/kubelet-client-current.pem")
            .exists()
    );
}

//! End to end with the real `kubectl` against `kubesigner dev`: create with kubectl's default
//! validation (as admin and with a bootstrap token), get (columns), -o yaml, describe,
//! certificate approve / deny, delete, get -w seeing the approval; every certificate checked with
//! openssl and pkilint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use appliance::*;

const CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const SERVING: &str = "kubernetes.io/kubelet-serving";

fn create(a: &Appliance, kubeconfig: &std::path::Path, name: &str, manifest: &str) -> String {
    let f = a.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&f, manifest).unwrap();
    kubectl_ok(kubeconfig, &["create", "-f", f.to_str().unwrap()])
}

fn certificate(a: &Appliance, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let b64 = kubectl_ok(
            &a.admin_kubeconfig(),
            &["get", "csr", name, "-o", "jsonpath={.status.certificate}"],
        );
        if !b64.is_empty() {
            use base64::Engine;
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap();
            return String::from_utf8(pem).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no certificate for {name}:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bootstrap_token_creates_client_csr_that_is_auto_approved_and_issued() {
    let a = Appliance::start();
    let (_key, csr) = openssl_csr(
        a.dir.path(),
        "n1",
        "/O=system:nodes/CN=system:node:node1",
        None,
    );
    let out = create(
        &a,
        &a.bootstrap_kubeconfig(),
        "node-csr-n1",
        &csr_manifest(
            "node-csr-n1",
            &csr,
            CLIENT,
            &["digital signature", "client auth"],
        ),
    );
    assert!(out.contains("node-csr-n1 created"), "{out}");
    let pem = certificate(&a, "node-csr-n1");
    let findings = check_certificate(a.dir.path(), &pem, &a.state().join("ca.crt"), &[]);
    assert!(findings.is_empty(), "pkilint: {findings:?}");
    let table = kubectl_ok(&a.admin_kubeconfig(), &["get", "csr"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("node-csr-n1"))
        .unwrap();
    assert!(
        row.contains(CLIENT)
            && row.contains("system:bootstrap:")
            && row.ends_with("Approved,Issued"),
        "{row}"
    );
}

#[test]
fn admin_approves_and_denies_with_kubectl_and_watch_sees_it() {
    let a = Appliance::start();
    let admin = a.admin_kubeconfig();
    // A serving CSR for a SAN no inventory knows: stays pending for a human.
    let (_k, csr) = openssl_csr(
        a.dir.path(),
        "s1",
        "/O=system:nodes/CN=system:node:node1",
        Some("DNS:node1.example.com,IP:192.0.2.10"),
    );
    create(
        &a,
        &admin,
        "serving-1",
        &csr_manifest(
            "serving-1",
            &csr,
            SERVING,
            &["digital signature", "server auth"],
        ),
    );
    let row = kubectl_ok(&admin, &["get", "csr", "serving-1", "--no-headers"]);
    assert!(row.trim_end().ends_with("Pending"), "{row}");

    // Watch in the background while approving.
    let mut watch = Command::new("kubectl")
        .env("KUBECONFIG", &admin)
        .args([
            "get",
            "csr",
            "serving-1",
            "-w",
            "--no-headers",
            "--request-timeout=30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let out = kubectl_ok(&admin, &["certificate", "approve", "serving-1"]);
    assert!(out.contains("approved"), "{out}");
    let pem = certificate(&a, "serving-1");
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let _ = watch.wait();
    let mut seen = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    assert!(seen.contains("Approved"), "watch saw: {seen}");
    let findings = check_certificate(a.dir.path(), &pem, &a.state().join("ca.crt"), &[]);
    assert!(findings.is_empty(), "pkilint: {findings:?}");

    // describe shows the subject kubectl parsed from the stored request.
    let d = kubectl_ok(&admin, &["describe", "csr", "serving-1"]);
    assert!(
        d.contains("system:node:node1") && d.contains("node1.example.com"),
        "{d}"
    );
    let y = kubectl_ok(&admin, &["get", "csr", "serving-1", "-o", "yaml"]);
    assert!(
        y.contains("reason: KubectlApprove") && y.contains("certificate: "),
        "{y}"
    );

    // Deny another; approving it afterwards is refused by kubectl itself.
    let (_k2, csr2) = openssl_csr(
        a.dir.path(),
        "s2",
        "/O=system:nodes/CN=system:node:node2",
        Some("DNS:node2.example.com"),
    );
    create(
        &a,
        &admin,
        "serving-2",
        &csr_manifest(
            "serving-2",
            &csr2,
            SERVING,
            &["digital signature", "server auth"],
        ),
    );
    kubectl_ok(&admin, &["certificate", "deny", "serving-2"]);
    let row = kubectl_ok(&admin, &["get", "csr", "serving-2", "--no-headers"]);
    assert!(row.trim_end().ends_with("Denied"), "{row}");
    let again = kubectl(&admin, &["certificate", "approve", "serving-2"]);
    assert!(!again.status.success());

    kubectl_ok(&admin, &["delete", "csr", "serving-2"]);
    let gone = kubectl(&admin, &["get", "csr", "serving-2"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
}

#[test]
fn bootstrap_identity_sees_only_its_own_csrs() {
    let a = Appliance::start();
    let admin = a.admin_kubeconfig();
    let (_k, csr) = openssl_csr(
        a.dir.path(),
        "x",
        "/O=system:nodes/CN=system:node:other",
        Some("DNS:other.example.com"),
    );
    create(
        &a,
        &admin,
        "admins-own",
        &csr_manifest(
            "admins-own",
            &csr,
            SERVING,
            &["digital signature", "server auth"],
        ),
    );
    let (_k, csr) = openssl_csr(
        a.dir.path(),
        "n7",
        "/O=system:nodes/CN=system:node:node7",
        None,
    );
    create(
        &a,
        &a.bootstrap_kubeconfig(),
        "node-csr-7",
        &csr_manifest(
            "node-csr-7",
            &csr,
            CLIENT,
            &["digital signature", "client auth"],
        ),
    );
    let list = kubectl_ok(&a.bootstrap_kubeconfig(), &["get", "csr", "--no-headers"]);
    assert!(
        list.contains("node-csr-7") && !list.contains("admins-own"),
        "{list}"
    );
    let other = kubectl(&a.bootstrap_kubeconfig(), &["get", "csr", "admins-own"]);
    assert!(!other.status.success());
    let approve = kubectl(
        &a.bootstrap_kubeconfig(),
        &["certificate", "approve", "--force", "node-csr-7"],
    );
    assert!(
        String::from_utf8_lossy(&approve.stderr).contains("Forbidden"),
        "{}",
        String::from_utf8_lossy(&approve.stderr)
    );
    assert!(!approve.status.success());
}

#[test]
fn everything_survives_a_restart() {
    let mut a = Appliance::start();
    let (_k, csr) = openssl_csr(
        a.dir.path(),
        "r",
        "/O=system:nodes/CN=system:node:node9",
        None,
    );
    create(
        &a,
        &a.bootstrap_kubeconfig(),
        "node-csr-9",
        &csr_manifest(
            "node-csr-9",
            &csr,
            CLIENT,
            &["digital signature", "client auth"],
        ),
    );
    let before = certificate(&a, "node-csr-9");
    a.restart();
    let after = certificate(&a, "node-csr-9");
    assert_eq!(before, after);
    let row = kubectl_ok(
        &a.admin_kubeconfig(),
        &["get", "csr", "node-csr-9", "--no-headers"],
    );
    assert!(row.trim_end().ends_with("Approved,Issued"), "{row}");
}

/// `kubectl api-resources` and `kubectl api-versions` exit 0 and list exactly the CSR API (no
/// empty core/v1, no Leases outside external-signing mode); `kubectl get` of a path that is
/// not a route is a 404, not a list.
#[test]
fn api_resources_and_api_versions_exit_0() {
    let a = Appliance::start();
    let k = a.admin_kubeconfig();
    let resources = kubectl_ok(&k, &["api-resources", "--no-headers"]);
    let names: Vec<&str> = resources
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["certificatesigningrequests"], "{resources}");
    let versions = kubectl_ok(&k, &["api-versions"]);
    assert_eq!(versions.trim(), "certificates.k8s.io/v1");
    let out = kubectl(
        &k,
        &[
            "get",
            "--raw",
            "/apis/certificates.k8s.io/v1/certificatesigningrequestsXYZ",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{out:?}"
    );
}

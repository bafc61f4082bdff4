//! `kubesigner controller` against `kubesigner dev --external-signing` (deploy/rbac.yaml
//! applied), real SoftHSM token copies, real kube-rs: one replica approves by policy and signs
//! bootstrap and serving certificates; without `--approve` CSRs stay pending until an admin
//! approves; a CSR that has a certificate is never signed again across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use crate::support::controller;

use std::time::{Duration, Instant};

use appliance::*;
use controller::*;

const WAIT: Duration = Duration::from_secs(30);

fn wait_certificate(a: &Appliance, name: &str) -> String {
    wait_for(WAIT, &format!("certificate of {name}"), || {
        certificate_of(a, name)
    })
}

#[test]
fn single_controller_issues_bootstrap_and_serving_certificates() {
    let a = start_cluster();
    let mut r = Replica::new(&a, "replica-a", &ReplicaOptions::default());
    r.start();
    let holder = wait_for(WAIT, "a lease holder", || lease_holder(&a));
    assert_eq!(holder, "replica-a");

    // Bootstrap: the bootstrap token's CSR is approved by policy and signed by the token key.
    let key = create_bootstrap_csr(&a, "boot-1", "ctl-node-1");
    let client_pem = wait_certificate(&a, "boot-1");
    assert!(conditions_of(&a, "boot-1").contains("Approved"));
    let ca = a.state().join("ca.crt");
    let findings = check_certificate(a.dir.path(), &client_pem, &ca, &[]);
    assert!(findings.is_empty(), "pkilint: {findings:?}");

    // Serving: the node (its new client certificate) asks for SANs from the inventory.
    let node_kc = node_kubeconfig(&a, "ctl-node-1", &client_pem, &key);
    let (_k, pem) = openssl_csr(
        a.dir.path(),
        "serve-1",
        "/O=system:nodes/CN=system:node:ctl-node-1",
        Some("DNS:ctl-node-1.example.com,IP:10.0.0.1"),
    );
    let manifest = csr_manifest(
        "serve-1",
        &pem,
        "kubernetes.io/kubelet-serving",
        &["digital signature", "server auth"],
    );
    let file = a.dir.path().join("serve-1.yaml");
    std::fs::write(&file, manifest).unwrap();
    kubectl_ok(&node_kc, &["create", "-f", file.to_str().unwrap()]);
    let serving_pem = wait_certificate(&a, "serve-1");
    let findings = check_certificate(a.dir.path(), &serving_pem, &ca, &[]);
    assert!(findings.is_empty(), "pkilint: {findings:?}");

    // A serving CSR with an address outside the inventory is left pending.
    let (_k, pem) = openssl_csr(
        a.dir.path(),
        "serve-bad",
        "/O=system:nodes/CN=system:node:ctl-node-1",
        Some("DNS:ctl-node-1.example.com,IP:192.0.2.7"),
    );
    let manifest = csr_manifest(
        "serve-bad",
        &pem,
        "kubernetes.io/kubelet-serving",
        &["digital signature", "server auth"],
    );
    std::fs::write(&file, manifest).unwrap();
    kubectl_ok(&node_kc, &["create", "-f", file.to_str().unwrap()]);

    // A signer-rule violation (SANs in a kubelet client CSR) is marked Failed.
    let (_k, pem) = openssl_csr(
        a.dir.path(),
        "bad-1",
        "/O=system:nodes/CN=system:node:ctl-node-5",
        Some("DNS:ctl-node-5.example.com"),
    );
    let manifest = csr_manifest(
        "bad-1",
        &pem,
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
    );
    std::fs::write(&file, manifest).unwrap();
    kubectl_ok(
        &a.bootstrap_kubeconfig(),
        &["create", "-f", file.to_str().unwrap()],
    );
    wait_for(WAIT, "bad-1 Failed", || {
        conditions_of(&a, "bad-1").contains("Failed").then_some(())
    });
    assert!(certificate_of(&a, "bad-1").is_none());

    // Exactly one certificate_written per CSR in the cluster's audit; the local audit shows
    // the spent signature before the status write.
    wait_for(WAIT, "the cluster audit", || {
        (certificates_written(&a, "serve-1") == 1).then_some(())
    });
    assert_eq!(certificates_written(&a, "boot-1"), 1);
    // Negative check: a bounded wait on purpose (nothing may happen in it); it fails as soon as
    // the held CSR gets a condition or a certificate.
    assert!(!tools::poll(Duration::from_secs(2), || {
        !conditions_of(&a, "serve-bad").trim().is_empty()
            || certificate_of(&a, "serve-bad").is_some()
    }));
    assert_eq!(conditions_of(&a, "serve-bad").trim(), "");
    assert!(certificate_of(&a, "serve-bad").is_none());

    // The operator adds the address to the inventory: re-read without a restart, a new CSR
    // for it is approved (the held one waits for a human, as in serve).
    let inventory = r.dir.join("inventory.toml");
    let text = std::fs::read_to_string(&inventory).unwrap().replace(
        "addresses = [\"10.0.0.1\"]",
        "addresses = [\"10.0.0.1\", \"192.0.2.7\"]",
    );
    std::fs::write(&inventory, text).unwrap();
    wait_for(WAIT, "the inventory reload", || {
        r.log().contains("node inventory reloaded").then_some(())
    });
    let (_k, pem) = openssl_csr(
        a.dir.path(),
        "serve-2",
        "/O=system:nodes/CN=system:node:ctl-node-1",
        Some("DNS:ctl-node-1.example.com,IP:192.0.2.7"),
    );
    let manifest = csr_manifest(
        "serve-2",
        &pem,
        "kubernetes.io/kubelet-serving",
        &["digital signature", "server auth"],
    );
    std::fs::write(&file, manifest).unwrap();
    kubectl_ok(&node_kc, &["create", "-f", file.to_str().unwrap()]);
    wait_certificate(&a, "serve-2");
    let local = r.local_audit();
    let kinds: Vec<&str> = local
        .iter()
        .filter(|(_, n)| n == "boot-1")
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(kinds, ["signature_spent", "status_written"], "{local:?}");
    assert_eq!(r.stop().map(|s| s.code()), Some(Some(0)));

    // An orderly stop signs a last checkpoint of the local audit log with the token's audit
    // key, and `audit verify --config` checks the chain and that signature.
    let records = audit_records(&r.config);
    assert_eq!(
        records.last().unwrap()["kind"],
        "checkpoint",
        "{records:?}\n{}",
        r.log()
    );
    let export = r.dir.join("local-audit.jsonl");
    let lines: Vec<String> = records.iter().map(|v| v.to_string()).collect();
    std::fs::write(&export, lines.join("\n") + "\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(["audit", "verify"])
        .arg(&export)
        .arg("--config")
        .arg(&r.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn without_approve_csrs_stay_pending_until_an_admin_approves() {
    let a = start_cluster();
    let opts = ReplicaOptions {
        approve: false,
        ..ReplicaOptions::default()
    };
    let mut r = Replica::new(&a, "replica-a", &opts);
    r.start();
    wait_for(WAIT, "a lease holder", || lease_holder(&a));
    create_bootstrap_csr(&a, "pending-1", "ctl-node-2");
    // Negative check: a bounded wait on purpose (nothing may happen in it); it fails as soon as
    // the unapproved CSR gets a condition or a certificate.
    assert!(!tools::poll(Duration::from_secs(3), || {
        !conditions_of(&a, "pending-1").trim().is_empty()
            || certificate_of(&a, "pending-1").is_some()
    }));
    assert_eq!(conditions_of(&a, "pending-1").trim(), "");
    assert!(certificate_of(&a, "pending-1").is_none());
    // An admin approves: the controller signs it.
    kubectl_ok(
        &a.admin_kubeconfig(),
        &["certificate", "approve", "pending-1"],
    );
    let pem = wait_certificate(&a, "pending-1");
    let ca = a.state().join("ca.crt");
    assert!(check_certificate(a.dir.path(), &pem, &ca, &[]).is_empty());
    drop(r);
}

#[test]
fn a_csr_with_a_certificate_is_never_signed_again_after_restart() {
    let a = start_cluster();
    let mut r = Replica::new(&a, "replica-a", &ReplicaOptions::default());
    r.start();
    wait_for(WAIT, "a lease holder", || lease_holder(&a));
    create_bootstrap_csr(&a, "once-1", "ctl-node-3");
    let first = wait_certificate(&a, "once-1");

    // SIGTERM releases the lease: the restarted replica takes it again at once.
    assert_eq!(r.stop().map(|s| s.code()), Some(Some(0)));
    assert_eq!(lease_holder(&a), None, "released on SIGTERM");
    let restarted = Instant::now();
    r.start();
    wait_for(WAIT, "the lease again", || lease_holder(&a));
    eprintln!("re-acquired after restart in {:?}", restarted.elapsed());
    // A new CSR proves the restarted replica reconciled the list (once-1 included).
    create_bootstrap_csr(&a, "once-2", "ctl-node-4");
    wait_certificate(&a, "once-2");
    assert_eq!(certificate_of(&a, "once-1").unwrap(), first);
    assert_eq!(certificates_written(&a, "once-1"), 1);
    let spent = r
        .local_audit()
        .iter()
        .filter(|(k, n)| k == "signature_spent" && n == "once-1")
        .count();
    assert_eq!(spent, 1, "{}", r.log());
}

#[test]
fn without_rbac_the_controller_is_refused_and_signs_nothing() {
    // The cluster stand-in without deploy/rbac.yaml: the ServiceAccount may do nothing, as in
    // a cluster where the manifest was not applied.
    let a = Appliance::start_with(&["--external-signing"]);
    let mut r = Replica::new(&a, "replica-a", &ReplicaOptions::default());
    r.start();
    create_bootstrap_csr(&a, "norbac-1", "ctl-node-1");
    wait_for(WAIT, "a 403 in the controller log", || {
        r.log().contains("403").then_some(())
    });
    // Negative check: a bounded wait on purpose (nothing may happen in it); it fails as soon as
    // a lease is taken or the CSR gets a condition or a certificate.
    assert!(!tools::poll(Duration::from_secs(2), || {
        lease_holder(&a).is_some()
            || !conditions_of(&a, "norbac-1").trim().is_empty()
            || certificate_of(&a, "norbac-1").is_some()
    }));
    assert_eq!(lease_holder(&a), None);
    assert_eq!(conditions_of(&a, "norbac-1").trim(), "");
    assert!(certificate_of(&a, "norbac-1").is_none());
    assert!(r.local_audit().is_empty(), "{:?}", r.local_audit());
}

#[test]
fn a_node_disabled_in_the_local_store_is_denied() {
    let a = start_cluster();
    let mut r = Replica::new(&a, "replica-a", &ReplicaOptions::default());
    // `kubesigner node disable --config` works on the controller's own data dir.
    let out = std::process::Command::new(bin())
        .args(["node", "disable", "ctl-node-6", "--config"])
        .arg(&r.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.start();
    wait_for(WAIT, "a lease holder", || lease_holder(&a));
    create_bootstrap_csr(&a, "disabled-1", "ctl-node-6");
    wait_for(WAIT, "disabled-1 Denied", || {
        conditions_of(&a, "disabled-1")
            .contains("Denied")
            .then_some(())
    });
    assert!(certificate_of(&a, "disabled-1").is_none());
    let reason = kubectl_ok(
        &a.admin_kubeconfig(),
        &[
            "get",
            "csr",
            "disabled-1",
            "-o",
            "jsonpath={.status.conditions[0].reason}",
        ],
    );
    assert_eq!(reason, "NodeDisabled");
}

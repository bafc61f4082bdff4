//! The seeds' node flow end to end against the appliance's HTTPS server: a bootstrap token,
//! `kubesigner bootstrap --once`, the CSR auto-approved, the cert dir and kubeconfig written
//! with the kubelet's layout, the node's own credentials used by the real `kubectl`, and a
//! restart that reuses the valid certificate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::node;

use std::os::unix::fs::PermissionsExt;

use node::*;

const CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";

#[test]
fn token_bootstrap_writes_cert_dir_and_kubeconfig_and_node_sees_only_its_csrs() {
    let signer = Signer::start("");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let out = node.run(&["--once", "--wait-timeout", "60s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Cert dir: the timestamped pair (0600) and the current symlink; the pending key is gone.
    let target = node.current("kubelet-client").expect("current symlink");
    let name = target.to_str().unwrap().to_string();
    assert!(
        name.starts_with("kubelet-client-")
            && name.len() == "kubelet-client-2026-01-01-00-00-00.pem".len()
    );
    assert_eq!(
        node.files(),
        vec!["kubelet-client-current.pem".to_string(), name.clone()]
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
    );
    let pair = node.cert_dir().join(&name);
    assert_eq!(
        std::fs::metadata(&pair).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = x509_text(&pair);
    assert!(
        text.contains("Subject: CN=system:node:node1,O=system:nodes"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(!text.contains("Subject Alternative Name"), "{text}");
    let findings = verify_and_lint(node.dir.path(), &pair, &signer.ca());
    assert!(findings.is_empty(), "pkilint: {findings:?}");

    // The kubeconfig has the kubelet's layout and points at the current pair.
    let kc = std::fs::read_to_string(node.kubeconfig()).unwrap();
    let current = std::path::absolute(node.cert_dir().join("kubelet-client-current.pem")).unwrap();
    assert!(
        kc.contains(&format!("client-certificate: {}", current.display())),
        "{kc}"
    );
    assert!(
        kc.contains(&format!("client-key: {}", current.display())),
        "{kc}"
    );
    assert!(kc.contains(&format!("server: {}", signer.url())), "{kc}");
    assert!(kc.contains("current-context: default-context"), "{kc}");

    // Another requester's CSR exists; the node sees only its own.
    let other = node::kubectl(&signer.admin_kubeconfig(), &["get", "csr", "-o", "name"]);
    assert!(other.status.success());
    let other_token = signer.create_token("1h");
    let other_node = Node::new(&signer, "node2", &other_token);
    assert_eq!(other_node.run(&["--once"]).status.code(), Some(0));
    let all = kubectl_ok(&signer.admin_kubeconfig(), &["get", "csr", "-o", "name"]);
    assert_eq!(all.lines().count(), 2, "{all}");
    let mine = kubectl_ok(&node.kubeconfig(), &["get", "csr", "-o", "name"]);
    let mine: Vec<&str> = mine.lines().collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert!(
        mine[0].starts_with("certificatesigningrequest.certificates.k8s.io/node-csr-"),
        "{mine:?}"
    );
    let requestor = kubectl_ok(
        &signer.admin_kubeconfig(),
        &[
            "get",
            mine[0],
            "-o",
            "jsonpath={.spec.username} {.spec.signerName} {.status.conditions[0].reason}",
        ],
    );
    assert!(requestor.starts_with("system:bootstrap:"), "{requestor}");
    assert!(
        requestor.contains(CLIENT) && requestor.ends_with("AutoApproved"),
        "{requestor}"
    );

    // A second run finds the valid certificate and sends no CSR.
    let again = node.run(&["--once"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("not bootstrapping"));
    let all2 = kubectl_ok(&signer.admin_kubeconfig(), &["get", "csr", "-o", "name"]);
    assert_eq!(all2.lines().count(), 2, "{all2}");
    assert_eq!(
        node.current("kubelet-client").unwrap().to_str().unwrap(),
        name
    );
}

#[test]
fn server_and_ca_flags_point_the_node_kubeconfig_at_the_cluster_apiserver() {
    let signer = Signer::start("");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let cluster_ca = node.dir.path().join("cluster-ca.crt");
    std::fs::copy(signer.ca(), &cluster_ca).unwrap();
    let out = node.run(&[
        "--once",
        "--server",
        "https://apiserver.example:6443",
        "--certificate-authority",
        cluster_ca.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kc = std::fs::read_to_string(node.kubeconfig()).unwrap();
    assert!(
        kc.contains("server: https://apiserver.example:6443"),
        "{kc}"
    );
    assert!(
        kc.contains(&format!("certificate-authority: {}", cluster_ca.display())),
        "{kc}"
    );
    assert!(!kc.contains("certificate-authority-data"), "{kc}");
    assert!(!kc.contains(&signer.url()), "{kc}");
}

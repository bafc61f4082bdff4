//! The fallback to the bootstrap kubeconfig (reference §4.4): when the node's client
//! certificate has expired, `kubesigner bootstrap` bootstraps again with its bootstrap
//! credentials — at start and while rotating — and logs why, instead of giving up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::node;

use std::time::Duration;

use node::*;

/// The lifetime the short-lived appliance gives node certificates.
const TTL_SECS: u64 = 4;

fn bootstrap_csrs(signer: &Signer) -> Vec<String> {
    kubectl_ok(
        &signer.admin_kubeconfig(),
        &["get", "csr", "-o", "jsonpath={.items[*].metadata.name}"],
    )
    .split_whitespace()
    .filter(|n| n.starts_with("node-csr-"))
    .map(str::to_owned)
    .collect()
}

#[test]
fn expired_client_certificate_at_start_falls_back_to_the_bootstrap_kubeconfig() {
    let signer = Signer::start_short_lived(&format!("{TTL_SECS}s"));
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let out = node.run(&["--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Still valid: used as is.
    let out = node.run(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(log.contains("not bootstrapping"), "{log}");
    assert_eq!(bootstrap_csrs(&signer).len(), 1);

    // A clock wait, not a condition: the certificate's lifetime must be over.
    std::thread::sleep(Duration::from_secs(TTL_SECS + 1));
    let out = node.run(&["--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("falling back to the bootstrap kubeconfig") && log.contains("expired at"),
        "{log}"
    );
    assert_eq!(bootstrap_csrs(&signer).len(), 2, "a second node-csr- CSR");
    // The new pair is in place (the old one may share its second-resolution file name).
    let pem = std::fs::read_to_string(node.cert_dir().join("kubelet-client-current.pem")).unwrap();
    assert!(pem.contains("PRIVATE KEY-----"));
    let text = x509_text(&node.cert_dir().join("kubelet-client-current.pem"));
    assert!(
        text.contains("CN=system:node:node1,O=system:nodes"),
        "{text}"
    );
    // The node credentials work again.
    kubectl_ok(&node.kubeconfig(), &["get", "csr"]);
}

#[test]
fn rotating_node_whose_certificate_expired_bootstraps_again_instead_of_exiting() {
    let signer = Signer::start_short_lived(&format!("{TTL_SECS}s"));
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    // Renewal comes only after the certificate has expired.
    let after = format!("{}s", TTL_SECS + 2);
    let mut child = node.spawn(&["--test-renew-after", &after]);
    wait_for(30, "the first certificate", || {
        node.current("kubelet-client")
    });
    wait_for(40, "a second bootstrap", || {
        (bootstrap_csrs(&signer).len() >= 2).then_some(())
    });
    let log = wait_for(10, "the fallback log line", || {
        let l = node.log();
        l.contains("falling back to the bootstrap kubeconfig")
            .then_some(l)
    });
    assert!(log.contains("expired at"), "{log}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "bootstrap exited instead of falling back:\n{log}"
    );
    // The renewal path (node credential) was never used with the expired certificate.
    let renewals = kubectl_ok(
        &signer.admin_kubeconfig(),
        &["get", "csr", "-o", "jsonpath={.items[*].metadata.name}"],
    );
    assert!(
        !renewals.split_whitespace().any(|n| n.starts_with("csr-")),
        "{renewals}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

//! SIGTERM / SIGINT: `kubesigner bootstrap` stops cleanly, mid-wait (143 / 130: the
//! certificates are not in place) and mid-rotation (0), and the cert dir is always consistent:
//! no temporary file, no `-updated` symlink, every pair complete, the current link resolving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::node;

use std::process::Child;
use std::time::Duration;

use node::*;

const CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";

fn signal(child: &Child, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// No temporary files or `-updated` links; every timestamped pair holds a certificate and a
/// key; the current link (if any) resolves.
fn consistent(node: &Node) {
    for f in node.files() {
        assert!(
            !f.starts_with('.') && !f.contains("-updated"),
            "leftover {f}: {:?}",
            node.files()
        );
        let p = node.cert_dir().join(&f);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            text.contains("PRIVATE KEY-----\n"),
            "{f} has no complete key"
        );
        if f.starts_with("kubelet-client-") {
            assert!(text.contains("-----END CERTIFICATE-----"), "{f}");
        }
    }
}

#[test]
fn stop_signal_mid_wait_exits_143_or_130_and_a_restart_picks_the_csr_up() {
    let signer = Signer::start("");
    // The seeds' static-token group: its bootstrap CSR waits for an admin.
    let node = Node::new(&signer, "node1", BOOTSTRAP_GROUP_TOKEN);
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let mut child = node.spawn(&[]);
        wait_for(30, "the pending bootstrap CSR", || {
            pending(&signer.admin_kubeconfig(), CLIENT)
                .into_iter()
                .next()
        });
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, sig);
        assert_eq!(
            wait_exit(&mut child, 10, || node.log()),
            code,
            "{}",
            node.log()
        );
        assert!(node.log().contains("stopped"), "{}", node.log());
        consistent(&node);
        assert_eq!(
            node.files(),
            ["kubelet-client.key.tmp"],
            "only the pending key"
        );
        assert!(!node.kubeconfig().exists());
    }
    // Both runs waited on the same CSR (same pending key, same node-csr- name).
    let names = pending(&signer.admin_kubeconfig(), CLIENT);
    assert_eq!(names.len(), 1, "{names:?}");
    kubectl_ok(
        &signer.admin_kubeconfig(),
        &["certificate", "approve", &names[0]],
    );
    let out = node.run(&["--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    consistent(&node);
    assert!(node.current("kubelet-client").is_some());
}

#[test]
fn sigterm_mid_rotation_exits_0_and_leaves_the_cert_dir_consistent() {
    let signer = Signer::start("");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    // Renewing every 150 ms keeps a write in flight much of the time; stop at varied points.
    for delay_ms in [300u64, 470, 640, 810] {
        let mut child = node.spawn(&["--test-renew-after", "150ms"]);
        wait_for(30, "a client certificate", || {
            node.current("kubelet-client")
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(&child, "-TERM");
        assert_eq!(
            wait_exit(&mut child, 10, || node.log()),
            0,
            "{}",
            node.log()
        );
        consistent(&node);
        let current = node.cert_dir().join("kubelet-client-current.pem");
        let text = x509_text(&current);
        assert!(text.contains("CN=system:node:node1"), "{text}");
        // The node kubeconfig is whole and its credentials work.
        kubectl_ok(&node.kubeconfig(), &["get", "csr"]);
    }
    let renewals = kubectl_ok(
        &signer.admin_kubeconfig(),
        &["get", "csr", "-o", "jsonpath={.items[*].metadata.name}"],
    );
    // At least one renewal ran (so some stop fell during a rotation); how many fit in the
    // windows depends on how busy the machine is (three of four on a loaded 2-core box).
    assert!(
        renewals.split_whitespace().any(|n| n.starts_with("csr-")),
        "{renewals}"
    );
}

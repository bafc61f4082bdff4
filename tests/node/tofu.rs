//! Trust on first use (`[issuance] record_first_bootstrap_address`): off, a serving CSR for
//! the node's own peer address waits for an admin; on, the peer address of the node's first
//! *approved* bootstrap CSR counts as an inventory address (a pending or denied request records
//! nothing), and a later bootstrap from another address does not change it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::node;

use std::net::IpAddr;
use std::time::Duration;

use node::*;

const CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const SERVING: &str = "kubernetes.io/kubelet-serving";
const TOFU: &str = "record_first_bootstrap_address = true";

fn first_address(signer: &Signer, node: &str) -> Option<IpAddr> {
    kubesigner::store::Store::open(&signer.data_dir())
        .unwrap()
        .first_bootstrap_address(node)
        .unwrap()
}

#[test]
fn tofu_off_serving_csr_for_the_peer_ip_stays_pending() {
    let signer = Signer::start("");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let mut child = node.spawn(&["--once", "--serving", "--address", "127.0.0.1"]);
    wait_for(30, "a pending serving CSR", || {
        pending(&signer.admin_kubeconfig(), SERVING)
            .into_iter()
            .next()
    });
    // Negative check: a bounded wait on purpose (the node must keep waiting through it); it
    // fails as soon as the node exits.
    assert!(!tools::poll(Duration::from_secs(1), || {
        child.try_wait().unwrap().is_some()
    }));
    assert!(
        child.try_wait().unwrap().is_none(),
        "bootstrap ended although its serving CSR should wait:\n{}",
        node.log()
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(node.current("kubelet-client").is_some(), "{}", node.log());
    assert!(node.current("kubelet-server").is_none());
    assert_eq!(first_address(&signer, "node1"), None);
}

#[test]
fn tofu_on_first_bootstrap_address_approves_serving_and_is_never_overwritten() {
    let signer = Signer::start_with("", "[::]", TOFU);
    // 1. A bootstrap CSR for node1 from a static-token group the policy does not
    //    auto-approve stays pending: a request that is not approved records nothing.
    let held = Node::new(&signer, "node1", BOOTSTRAP_GROUP_TOKEN);
    let mut child = held.spawn(&["--once"]);
    wait_for(30, "the pending bootstrap CSR", || {
        pending(&signer.admin_kubeconfig(), CLIENT)
            .into_iter()
            .next()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(first_address(&signer, "node1"), None);

    // 2. The first *approved* bootstrap for node1 comes over IPv4: its address is recorded.
    let token = signer.create_token("1h");
    let first = Node::new(&signer, "node1", &token);
    let out = first.run(&["--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v4: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(first_address(&signer, "node1"), Some(v4));

    // A later bootstrap for node1 from another address (IPv6 loopback, a pending-only token)
    // does not change it.
    let other = Node::at(&signer, "node1", BOOTSTRAP_GROUP_TOKEN, &signer.url_v6());
    let mut child = other.spawn(&["--once"]);
    wait_for(30, "a second pending bootstrap CSR", || {
        let p = pending(&signer.admin_kubeconfig(), CLIENT);
        (p.len() >= 2).then_some(())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(first_address(&signer, "node1"), Some(v4));
    let node = first;

    // 3. A serving CSR for the recorded address is auto-approved; one for the second
    //    connection's address waits for an admin.
    let out = node.run(&["--once", "--serving", "--address", "127.0.0.1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = x509_text(&node.cert_dir().join("kubelet-server-current.pem"));
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    std::fs::remove_file(node.cert_dir().join("kubelet-server-current.pem")).unwrap();
    let mut child = node.spawn(&["--once", "--serving", "--address", "::1"]);
    wait_for(30, "a pending serving CSR for ::1", || {
        pending(&signer.admin_kubeconfig(), SERVING)
            .into_iter()
            .next()
    });
    // Negative check: a bounded wait on purpose (the node must keep waiting through it); it
    // fails as soon as the node exits.
    assert!(!tools::poll(Duration::from_secs(1), || {
        child.try_wait().unwrap().is_some()
    }));
    assert!(child.try_wait().unwrap().is_none(), "{}", node.log());
    let _ = child.kill();
    let _ = child.wait();

    // 4. `kubesigner node show` shows it; `kubesigner node forget` clears it.
    let show = || {
        let out = std::process::Command::new(bin())
            .args(["node", "show", "node1", "--config"])
            .arg(signer.config_path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        show().contains("first-bootstrap-address: 127.0.0.1\n"),
        "{}",
        show()
    );
    let out = std::process::Command::new(bin())
        .args(["node", "forget", "node1", "--config"])
        .arg(signer.config_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(first_address(&signer, "node1"), None);
    assert!(
        show().contains("first-bootstrap-address: none\n"),
        "{}",
        show()
    );
}

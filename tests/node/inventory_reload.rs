//! The node inventory is reloaded when its file changes: a node missing from it gets no
//! auto-approved serving certificate; once the operator adds it (no restart) the next serving
//! CSR is approved at once; a broken new file keeps the last good inventory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::node;

use std::time::Duration;

use node::*;

const SERVING_ARGS: &[&str] = &[
    "--once",
    "--wait-timeout",
    "4s",
    "--serving",
    "--address",
    "127.0.0.1",
    "--hostname",
    "node2.test",
];

#[test]
fn inventory_changes_apply_without_a_restart() {
    let signer = Signer::start("[nodes.node1]\naddresses = [\"127.0.0.1\"]\n");
    let inventory = signer.config_path().with_file_name("nodes.toml");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node2", &token);
    // node2 is not in the inventory: its serving CSR waits for an admin.
    let out = node.run(SERVING_ARGS);
    assert_ne!(out.status.code(), Some(0), "not approved without inventory");
    assert!(node.current("kubelet-server").is_none());

    // The operator adds node2; the appliance picks it up within a few seconds.
    std::fs::write(
        &inventory,
        "[nodes.node1]\naddresses = [\"127.0.0.1\"]\n[nodes.node2]\naddresses = [\"127.0.0.1\"]\ndns_names = [\"node2.test\"]\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let out = node.run(SERVING_ARGS);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(node.current("kubelet-server").is_some());

    // A broken file keeps the last good inventory: node2 still gets serving certificates.
    std::fs::write(&inventory, "[nodes.node2\nthis is not toml").unwrap();
    // Negative check: a bounded wait on purpose (two poll periods, in which the broken file
    // must not replace the inventory); only a node run can see the outcome.
    std::thread::sleep(Duration::from_secs(5));
    let out = node.run(SERVING_ARGS);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Node-side faults, each against the appliance's HTTPS server: a denied CSR, an expired
//! bootstrap token, the appliance restarted while the node waits (its watch dropped), an
//! unusable cert dir and a full one — with a clear message, a non-zero exit and no
//! half-written file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::node;

use std::time::{Duration, Instant};

use node::*;

const CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `kubesigner bootstrap` exit codes (src/cmd/bootstrap.rs).
const EXIT_REFUSED: i32 = 77;
const EXIT_CANT_CREATE: i32 = 73;

fn no_half_files(node: &Node) {
    for f in node.files() {
        assert!(
            !f.starts_with('.') && !f.contains(".tmp.") && !f.contains("updated"),
            "left over: {f} in {:?}",
            node.files()
        );
    }
}

#[test]
fn denied_csr_ends_with_a_clear_message_and_nothing_written() {
    let signer = Signer::start("");
    // The seeds' static token: may create client CSRs, which wait for an admin.
    let node = Node::new(&signer, "node1", BOOTSTRAP_GROUP_TOKEN);
    let mut child = node.spawn(&["--once"]);
    let name = wait_for(30, "a pending client CSR", || {
        pending(&signer.admin_kubeconfig(), CLIENT)
            .into_iter()
            .next()
    });
    assert!(name.starts_with("node-csr-"), "{name}");
    kubectl_ok(&signer.admin_kubeconfig(), &["certificate", "deny", &name]);
    assert_eq!(
        wait_exit(&mut child, 30, || node.log()),
        EXIT_REFUSED,
        "{}",
        node.log()
    );
    let log = node.log();
    assert!(
        log.contains(&format!("certificate signing request {name} was denied")),
        "{log}"
    );
    assert!(node.current("kubelet-client").is_none());
    assert!(!node.kubeconfig().exists());
    no_half_files(&node);
}

#[test]
fn expired_token_is_refused_quickly() {
    let signer = Signer::start("");
    let token = signer.create_token("1s");
    // A clock wait, not a condition: the token's 1 s lifetime must be over.
    std::thread::sleep(Duration::from_millis(2100));
    let node = Node::new(&signer, "node1", &token);
    let started = Instant::now();
    let out = node.run(&["--once"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_REFUSED), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(!node.kubeconfig().exists());
    assert!(node.current("kubelet-client").is_none());
}

#[test]
fn appliance_restarted_mid_wait_still_delivers_the_certificate() {
    let mut signer = Signer::start("");
    let node = Node::new(&signer, "node1", BOOTSTRAP_GROUP_TOKEN);
    let mut child = node.spawn(&["--once", "--wait-timeout", "120s"]);
    let name = wait_for(30, "a pending client CSR", || {
        pending(&signer.admin_kubeconfig(), CLIENT)
            .into_iter()
            .next()
    });
    // The node is watching; the appliance goes away (watch dropped) and comes back.
    std::thread::sleep(Duration::from_millis(500));
    signer.restart();
    assert!(child.try_wait().unwrap().is_none(), "{}", node.log());
    kubectl_ok(
        &signer.admin_kubeconfig(),
        &["certificate", "approve", &name],
    );
    assert_eq!(
        wait_exit(&mut child, 60, || node.log()),
        0,
        "{}",
        node.log()
    );
    assert!(node.current("kubelet-client").is_some());
    assert!(node.kubeconfig().exists());
    let log = node.log();
    assert!(
        log.contains("retrying") || log.contains("listing again"),
        "no sign of the dropped watch in:\n{log}"
    );
}

#[test]
fn unusable_cert_dir_fails_before_any_request() {
    let signer = Signer::start("");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    // The cert dir's parent is a regular file: nothing can be created there.
    std::fs::write(node.cert_dir(), b"not a directory").unwrap();
    let out = Command::new(bin())
        .arg("bootstrap")
        .arg("--bootstrap-kubeconfig")
        .arg(&node.bootstrap)
        .arg("--kubeconfig")
        .arg(node.kubeconfig())
        .arg("--cert-dir")
        .arg(node.cert_dir().join("pki"))
        .args(["--node-name", "node1", "--once"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_CANT_CREATE), "{err}");
    assert!(err.contains("cert dir"), "{err}");
    assert!(!node.kubeconfig().exists());
    let csrs = kubectl_ok(&signer.admin_kubeconfig(), &["get", "csr", "-o", "name"]);
    assert!(csrs.trim().is_empty(), "{csrs}");
}

use std::process::Command;

/// A small tmpfs mounted for the test (root only), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "this test mounts a tmpfs and needs root");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` until writes fail.
fn fill(dir: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    let mut small = std::fs::File::create(dir.join("filler2")).unwrap();
    while small
        .write_all(&[0u8; 64])
        .and_then(|_| small.sync_all())
        .is_ok()
    {}
}

#[test]
fn full_cert_dir_leaves_no_half_written_files() {
    let signer = Signer::start("");
    let node = Node::new(&signer, "node1", BOOTSTRAP_GROUP_TOKEN);
    let _mnt = Tmpfs::mount(&node.cert_dir(), "256k");
    let mut child = node.spawn(&["--once"]);
    let name = wait_for(30, "a pending client CSR", || {
        pending(&signer.admin_kubeconfig(), CLIENT)
            .into_iter()
            .next()
    });
    // The pending key is on disk; now the disk fills up before the certificate arrives.
    assert!(node.cert_dir().join("kubelet-client.key.tmp").exists());
    fill(&node.cert_dir());
    kubectl_ok(
        &signer.admin_kubeconfig(),
        &["certificate", "approve", &name],
    );
    assert_eq!(
        wait_exit(&mut child, 30, || node.log()),
        EXIT_CANT_CREATE,
        "{}",
        node.log()
    );
    assert!(node.log().contains("No space left"), "{}", node.log());
    let files = node.files();
    assert_eq!(
        files,
        vec![
            "filler".to_string(),
            "filler2".to_string(),
            "kubelet-client.key.tmp".to_string()
        ],
        "{files:?}"
    );
    assert!(!node.kubeconfig().exists());
    // Space again: the same key, the same CSR name (409 → reuse), the certificate arrives.
    std::fs::remove_file(node.cert_dir().join("filler")).unwrap();
    std::fs::remove_file(node.cert_dir().join("filler2")).unwrap();
    let out = node.run(&["--once", "--wait-timeout", "30s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("reusing it"), "{err}");
    assert!(node.current("kubelet-client").is_some());
    no_half_files(&node);
}

#[test]
fn appliance_down_at_start_is_waited_for() {
    let mut signer = Signer::start("");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    signer.stop();
    let mut child = node.spawn(&["--once", "--wait-timeout", "90s"]);
    // Negative check: a bounded wait on purpose (the node must keep waiting through it); it
    // fails as soon as the node exits.
    assert!(!tools::poll(Duration::from_secs(3), || {
        child.try_wait().unwrap().is_some()
    }));
    assert!(child.try_wait().unwrap().is_none(), "{}", node.log());
    signer.restart();
    // The health probe retries every ~2 s; the create then goes through.
    assert_eq!(
        wait_exit(&mut child, 60, || node.log()),
        0,
        "{}",
        node.log()
    );
    assert!(node.current("kubelet-client").is_some());
}

#[test]
fn bad_arguments_exit_64_with_one_line() {
    let signer = Signer::start("");
    let node = Node::new(&signer, "Bad_Name", BOOTSTRAP_GROUP_TOKEN);
    let out = node.run(&["--once"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a DNS-1123 subdomain"), "{err}");
    let node = Node::new(&signer, "node1", BOOTSTRAP_GROUP_TOKEN);
    let out = node.run(&["--once", "--serving"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--serving needs"));
    let missing = Command::new(bin())
        .args([
            "bootstrap",
            "--bootstrap-kubeconfig",
            "/nonexistent/k",
            "--kubeconfig",
        ])
        .arg(node.kubeconfig())
        .arg("--cert-dir")
        .arg(node.cert_dir())
        .args(["--node-name", "node1", "--once"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read kubeconfig"));
}

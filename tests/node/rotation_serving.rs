//! After bootstrap: rotation with the node's own certificate (`csr-` names, symlink swapped,
//! old files bounded), and the serving certificate — issued for inventory SANs, pending for an
//! unknown SAN until an admin approves — checked the way the apiserver checks a kubelet
//! (`--kubelet-certificate-authority`): a TLS server with it, a client trusting only the CA.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::node;

use std::process::{Command, Stdio};
use std::time::Duration;

use node::*;

const SERVING: &str = "kubernetes.io/kubelet-serving";
const INVENTORY: &str =
    "[nodes.node1]\naddresses = [\"127.0.0.1\"]\ndns_names = [\"node1.test\"]\n";

fn timestamped(node: &Node, prefix: &str) -> Vec<String> {
    node.files()
        .into_iter()
        .filter(|f| f.starts_with(prefix) && !f.ends_with("-current.pem"))
        .collect()
}

#[test]
fn rotation_renews_with_the_node_certificate_and_bounds_old_files() {
    let signer = Signer::start("");
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let mut child = node.spawn(&["--test-renew-after", "1100ms"]);
    let first = wait_for(30, "the first certificate", || {
        node.current("kubelet-client")
    });
    // Seven renewals: every one a new `csr-` CSR by system:node:node1, auto-approved.
    let renewals = wait_for(60, "seven renewals", || {
        let out = kubectl_ok(
            &signer.admin_kubeconfig(),
            &[
                "get",
                "csr",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.spec.username} {.status.conditions[0].reason}{\"\\n\"}{end}",
            ],
        );
        let r: Vec<String> = out
            .lines()
            .filter(|l| l.starts_with("csr-"))
            .map(str::to_owned)
            .collect();
        (r.len() >= 7).then_some(r)
    });
    let _ = child.kill();
    let _ = child.wait();
    for r in &renewals {
        assert!(
            r.ends_with(" system:node:node1 AutoApproved"),
            "{r}\n{}",
            node.log()
        );
    }
    // The bootstrap request went out as JSON, renewals as protobuf (reference §4.1).
    let log = node.log();
    let created: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("certificate signing request created"))
        .collect();
    assert!(
        created.first().is_some_and(|l| l.contains("body=\"json\"")),
        "{log}"
    );
    assert!(
        created
            .iter()
            .skip(1)
            .all(|l| l.contains("body=\"protobuf\""))
            && created.len() > 1,
        "{log}"
    );
    let now = node.current("kubelet-client").unwrap();
    assert_ne!(now, first);
    let files = timestamped(&node, "kubelet-client");
    assert!(files.len() <= 5, "{files:?}");
    assert!(
        files.contains(&now.to_str().unwrap().to_string()),
        "{files:?}"
    );
    // The node was SIGKILLed mid-rotation, so one in-flight temporary file or `-updated`
    // symlink may be left (the next update replaces it); what must hold is that the current
    // pair is complete and nothing else piles up.
    let leftovers: Vec<String> = node
        .files()
        .into_iter()
        .filter(|f| f.contains("updated") || f.starts_with('.'))
        .collect();
    assert!(leftovers.len() <= 1, "{leftovers:?}");
    let pair = std::fs::read_to_string(node.cert_dir().join(&now)).unwrap();
    assert!(
        pair.contains("-----BEGIN CERTIFICATE-----") && pair.contains("PRIVATE KEY-----"),
        "the current pair is complete"
    );
    let text = x509_text(&node.cert_dir().join(&now));
    assert!(text.contains("CN=system:node:node1,O=system:nodes"));
}

fn serving_kubeconfig(signer: &Signer, node: &Node) -> std::path::PathBuf {
    let pem = std::fs::read_to_string(node.cert_dir().join("kubelet-server-current.pem")).unwrap();
    let split = pem
        .find(concat!("-----BEGIN EC ", "PRIVATE KEY-----"))
        .unwrap();
    let k = kubesigner::kubeconfig::Kubeconfig {
        server: signer.url(),
        ca_pem: std::fs::read_to_string(signer.ca()).unwrap(),
        user_name: "serving".into(),
        credential: kubesigner::kubeconfig::Credential::ClientCertificate {
            cert_pem: pem[..split].to_string(),
            key_pem: zeroize::Zeroizing::new(pem[split..].to_string()),
        },
    };
    let p = node.dir.path().join("serving-as-client.kubeconfig");
    k.write(&p).unwrap();
    p
}

/// `openssl s_client` against `port`, trusting only `ca`, verifying `check` (`-verify_hostname
/// NAME` or `-verify_ip IP`); true when the chain and the name verify.
fn client_accepts(port: u16, ca: &std::path::Path, check: &[&str]) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .args(check)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Verify return code: 0 (ok)")
}

const SERVING_ARGS: &[&str] = &[
    "--once",
    "--wait-timeout",
    "30s",
    "--serving",
    "--address",
    "127.0.0.1",
    "--hostname",
    "node1.test",
];

#[test]
fn serving_certificate_for_inventory_sans_is_auto_approved() {
    let signer = Signer::start(INVENTORY);
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let out = node.run(SERVING_ARGS);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(node.current("kubelet-server").is_some());
}

#[test]
fn serving_certificate_verifies_as_the_apiserver_would_and_is_no_client_certificate() {
    let signer = Signer::start(INVENTORY);
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let mut child = node.spawn(SERVING_ARGS);
    // Issued at once when the inventory rule is wired in; approved by the admin otherwise.
    let approved = wait_for(
        30,
        "the serving certificate or a pending serving CSR",
        || {
            if node.current("kubelet-server").is_some() {
                return Some(false);
            }
            let name = pending(&signer.admin_kubeconfig(), SERVING)
                .into_iter()
                .next()?;
            kubectl_ok(
                &signer.admin_kubeconfig(),
                &["certificate", "approve", &name],
            );
            Some(true)
        },
    );
    assert_eq!(
        wait_exit(&mut child, 30, || node.log()),
        0,
        "{}",
        node.log()
    );
    eprintln!("serving CSR approved by the admin: {approved}");
    let pair = node.cert_dir().join("kubelet-server-current.pem");
    let text = x509_text(&pair);
    assert!(
        text.contains("CN=system:node:node1,O=system:nodes"),
        "{text}"
    );
    assert!(
        text.contains("DNS:node1.test") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("TLS Web Client Authentication"), "{text}");
    let findings = verify_and_lint(node.dir.path(), &pair, &signer.ca());
    assert!(findings.is_empty(), "pkilint: {findings:?}");
    // The serving CSR was sent by the node itself (its client certificate).
    let who = kubectl_ok(
        &signer.admin_kubeconfig(),
        &[
            "get",
            "csr",
            "-o",
            "jsonpath={range .items[*]}{.spec.signerName}={.spec.username}{\"\\n\"}{end}",
        ],
    );
    assert!(
        who.contains(&format!("{SERVING}=system:node:node1")),
        "{who}"
    );

    // A TLS server with it, checked by a client that trusts only the CA.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &port.to_string(),
            "-cert",
        ])
        .arg(&pair)
        .arg("-key")
        .arg(&pair)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(10, "s_server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let by_name = client_accepts(port, &signer.ca(), &["-verify_hostname", "node1.test"]);
    let by_ip = client_accepts(port, &signer.ca(), &["-verify_ip", "127.0.0.1"]);
    let wrong_name = client_accepts(port, &signer.ca(), &["-verify_hostname", "node2.test"]);
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=other",
            "-days",
            "1",
            "-keyout",
            "/dev/null",
            "-out",
        ])
        .arg(other_ca.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    let wrong_ca = client_accepts(port, other_ca.path(), &["-verify_hostname", "node1.test"]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        by_name && by_ip,
        "CA-only client refused the serving certificate"
    );
    assert!(!wrong_name, "a different host name was accepted");
    assert!(!wrong_ca, "a client trusting another CA accepted it");

    // The appliance refuses the serving certificate as a client certificate.
    let kc = serving_kubeconfig(&signer, &node);
    let out = node::kubectl(&kc, &["get", "csr"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unauthorized") || err.contains("certificate"),
        "{err}"
    );
}

#[test]
fn serving_certificate_for_an_unknown_san_waits_for_an_admin() {
    let signer = Signer::start(INVENTORY);
    let token = signer.create_token("1h");
    let node = Node::new(&signer, "node1", &token);
    let mut child = node.spawn(&["--once", "--serving", "--address", "10.9.9.9"]);
    let name = wait_for(30, "a pending serving CSR", || {
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
        "bootstrap ended while pending:\n{}",
        node.log()
    );
    assert!(node.current("kubelet-server").is_none());
    kubectl_ok(
        &signer.admin_kubeconfig(),
        &["certificate", "approve", &name],
    );
    assert_eq!(
        wait_exit(&mut child, 30, || node.log()),
        0,
        "{}",
        node.log()
    );
    let text = x509_text(&node.cert_dir().join("kubelet-server-current.pem"));
    assert!(text.contains("IP Address:10.9.9.9"), "{text}");
}

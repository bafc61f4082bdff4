//! Issue 17's defects, end to end over HTTPS with the real kubectl and the bootstrap token: what
//! is authorized is exactly what is signed.
//!
//! 1. two PEM blocks in `spec.request` are refused (422) and nothing is stored or signed;
//! 2. an admin group in O is refused whatever its string type, and a non-admin O in another
//!    string type reads the same to openssl and Python's `cryptography` as to the policy;
//! 3. concurrent bootstraps for one new node give exactly one certificate, every run;
//! 4. trust on first use records an address only for an approved request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{appliance, issue_csr, issue_soft_key};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use appliance::{Appliance, bin, csr_manifest, kubectl, kubectl_ok};
use der::Tag;
use issue_csr::{CN, O, csr_named, string_bytes, typed_name};
use issue_soft_key::{SoftAlg, SoftKey};
use serde_json::Value;

const CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
const CLIENT_USAGES: &[&str] = &["digital signature", "client auth"];

/// A fresh key's CSR for `O=system:nodes, CN=system:node:<node>` (UTF8String).
fn node_csr(node: &str) -> String {
    let name = typed_name(&[
        (O, Tag::Utf8String, b"system:nodes".to_vec()),
        (
            CN,
            Tag::Utf8String,
            format!("system:node:{node}").into_bytes(),
        ),
    ]);
    String::from_utf8(csr_named(&SoftKey::generate(SoftAlg::P256), name, &[])).unwrap()
}

/// `kubectl create` of a CSR object holding `request` (the PEM text, as is).
fn create(dir: &Path, kubeconfig: &Path, name: &str, request: &str, signer: &str) -> Output {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, csr_manifest(name, request, signer, CLIENT_USAGES)).unwrap();
    kubectl(kubeconfig, &["create", "-f", file.to_str().unwrap()])
}

fn all_csrs(a: &Appliance) -> Vec<Value> {
    let text = kubectl_ok(&a.admin_kubeconfig(), &["get", "csr", "-o", "json"]);
    let v: Value = serde_json::from_str(&text).unwrap();
    v["items"].as_array().unwrap().clone()
}

fn has_condition(csr: &Value, t: &str) -> bool {
    csr["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == t))
}

fn certificate(csr: &Value) -> Option<String> {
    use base64::Engine as _;
    let b64 = csr["status"]["certificate"].as_str()?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    Some(String::from_utf8(pem).unwrap())
}

fn stderr(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The subject as openssl and as Python's `cryptography` read it (RFC 4514), both.
fn outside_subjects(dir: &Path, cert_pem: &str) -> (String, String) {
    let leaf_end = cert_pem.find("-----END CERTIFICATE-----").unwrap() + 25;
    let file = dir.join("outside.pem");
    std::fs::write(&file, &cert_pem[..leaf_end]).unwrap();
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(&file)
        .output()
        .expect("openssl must be installed");
    assert!(o.status.success(), "{}", stderr(&o));
    let openssl = String::from_utf8(o.stdout)
        .unwrap()
        .trim()
        .trim_start_matches("subject=")
        .to_owned();
    let p = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys; from cryptography import x509; \
             c = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read()); \
             print(c.subject.rfc4514_string())",
        )
        .arg(&file)
        .output()
        .expect("python3 must be installed");
    assert!(p.status.success(), "python cryptography: {}", stderr(&p));
    (
        openssl,
        String::from_utf8(p.stdout).unwrap().trim().to_owned(),
    )
}

#[test]
fn a_second_pem_block_is_refused_and_nothing_is_stored_or_signed() {
    let a = Appliance::start();
    let dir = a.dir.path();
    let boot = a.bootstrap_kubeconfig();
    // The victim node bootstraps normally.
    let out = create(dir, &boot, "victim-1", &node_csr("victim"), CLIENT_KUBELET);
    assert!(out.status.success(), "{}", stderr(&out));
    let victim_cert = certificate(&all_csrs(&a)[0]).expect("the victim's certificate");
    let (openssl, python) = outside_subjects(dir, &victim_cert);
    assert_eq!(openssl, "CN=system:node:victim,O=system:nodes");
    assert_eq!(python, openssl);

    // The attack: a request for a fresh node, then (or before) one for the live victim.
    let fresh = node_csr("fresh-a");
    let victim = node_csr("victim");
    for (i, text) in [
        format!("x{fresh}{victim}"),
        format!("{fresh}{victim}"),
        format!("x{victim}{fresh}"),
        format!("x\n{victim}"),
        format!("{fresh}trailing"),
        fresh.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"),
    ]
    .iter()
    .enumerate()
    {
        let out = create(dir, &boot, &format!("attack-{i}"), text, CLIENT_KUBELET);
        let err = stderr(&out);
        assert!(!out.status.success(), "attack {i} was accepted:\n{err}");
        assert!(
            err.contains("is invalid") && err.contains("spec.request"),
            "attack {i}: {err}"
        );
    }
    let stored = all_csrs(&a);
    assert_eq!(stored.len(), 1, "{stored:#?}");
    // Whitespace around the one block is fine.
    let out = create(
        dir,
        &boot,
        "fresh-ws",
        &format!("\n  {fresh}\n\n"),
        CLIENT_KUBELET,
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_admin_group_is_refused_in_every_string_type() {
    let a = Appliance::serve_with_config(&format!(
        "[issuance]\nsigners = [\"{CLIENT_KUBELET}\", \"kubernetes.io/kubelet-serving\", \"{APISERVER_CLIENT}\"]\n"
    ));
    let dir = a.dir.path();
    let admin = a.admin_kubeconfig();
    let types = [
        Tag::Utf8String,
        Tag::PrintableString,
        Tag::Ia5String,
        Tag::VisibleString,
        Tag::BmpString,
        Tag::TeletexString,
    ];
    for (i, tag) in types.iter().enumerate() {
        let name = typed_name(&[
            (O, *tag, string_bytes(*tag, "system:masters")),
            (CN, Tag::Utf8String, b"mallory".to_vec()),
        ]);
        let pem =
            String::from_utf8(csr_named(&SoftKey::generate(SoftAlg::P256), name, &[])).unwrap();
        let out = create(dir, &admin, &format!("masters-{i}"), &pem, APISERVER_CLIENT);
        let err = stderr(&out);
        assert!(!out.status.success(), "{tag} accepted:\n{err}");
        assert!(
            err.contains("Forbidden") && err.contains("system:masters"),
            "{tag}: {err}"
        );
    }
    assert!(all_csrs(&a).is_empty());

    // A non-admin group in BMPString: approved by an admin, signed, and read by openssl and
    // Python exactly as the policy read it.
    let name = typed_name(&[
        (O, Tag::BmpString, string_bytes(Tag::BmpString, "dev-team")),
        (CN, Tag::Ia5String, b"alice".to_vec()),
    ]);
    let pem = String::from_utf8(csr_named(&SoftKey::generate(SoftAlg::P256), name, &[])).unwrap();
    let out = create(dir, &admin, "alice", &pem, APISERVER_CLIENT);
    assert!(out.status.success(), "{}", stderr(&out));
    kubectl_ok(&admin, &["certificate", "approve", "alice"]);
    let cert = appliance_wait(30, || {
        all_csrs(&a)
            .iter()
            .find(|c| c["metadata"]["name"] == "alice")
            .and_then(certificate)
    });
    let (openssl, python) = outside_subjects(dir, &cert);
    assert_eq!(openssl, "CN=alice,O=dev-team");
    assert_eq!(python, openssl);
}

/// Creates one CSR per PEM for `node`, all at once: one Python `kubernetes` client per thread,
/// each connection warmed up first, then released together by a barrier.
const RACE: &str = r#"
import base64, sys, threading
from kubernetes import client, config
kc, node, signer, pems = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
barrier = threading.Barrier(len(pems))
errors = []
def run(i, pem):
    api = client.CertificatesV1Api(config.new_client_from_config(config_file=kc))
    api.get_api_resources()
    body = client.V1CertificateSigningRequest(
        metadata=client.V1ObjectMeta(name=f"{node}-{i}"),
        spec=client.V1CertificateSigningRequestSpec(
            request=base64.b64encode(open(pem, "rb").read()).decode(),
            signer_name=signer, usages=["digital signature", "client auth"]))
    barrier.wait()
    try:
        api.create_certificate_signing_request(body)
    except Exception as e:
        errors.append(f"{i}: {e}")
threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(pems)]
[t.start() for t in threads]
[t.join() for t in threads]
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;

#[test]
fn concurrent_bootstraps_for_one_node_give_exactly_one_certificate() {
    // The per-node create limits off, so that every request reaches the decision at once.
    let a = Appliance::serve_with_config("[limits]\nenabled = false\n");
    let dir = a.dir.path();
    let script = dir.join("race.py");
    std::fs::write(&script, RACE).unwrap();
    for round in 0..3 {
        let node = format!("race-{round}");
        let pems: Vec<PathBuf> = (0..16)
            .map(|i| {
                let p = dir.join(format!("{node}-{i}.csr"));
                std::fs::write(&p, node_csr(&node)).unwrap();
                p
            })
            .collect();
        let out = Command::new("python3")
            .arg(&script)
            .arg(a.bootstrap_kubeconfig())
            .arg(&node)
            .arg(CLIENT_KUBELET)
            .args(&pems)
            .output()
            .expect("python3 must be installed");
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        let mine: Vec<Value> = all_csrs(&a)
            .into_iter()
            .filter(|c| {
                c["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("{node}-")))
            })
            .collect();
        assert_eq!(mine.len(), 16, "round {round}");
        let issued = mine.iter().filter(|c| certificate(c).is_some()).count();
        assert_eq!(
            issued, 1,
            "round {round}: {issued} certificates for one node"
        );
        for c in mine.iter().filter(|c| certificate(c).is_none()) {
            assert!(
                !has_condition(c, "Approved") && !has_condition(c, "Denied"),
                "round {round}: a second request was decided: {c:#}"
            );
        }
    }
}

/// Polls `f` every 200 ms for `secs` seconds.
fn appliance_wait<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A bootstrap kubeconfig like the dev one, holding `token` instead.
fn kubeconfig_with_token(a: &Appliance, token: &str) -> PathBuf {
    let text = std::fs::read_to_string(a.bootstrap_kubeconfig()).unwrap();
    let replaced: String = text
        .lines()
        .map(|l| match l.split_once("token:") {
            Some((indent, _)) => format!("{indent}token: {token}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    let path = a.state().join("bound.kubeconfig");
    std::fs::write(&path, replaced).unwrap();
    path
}

fn node_show(a: &Appliance, node: &str) -> String {
    let out = Command::new(bin())
        .args(["node", "show", node, "--config"])
        .arg(a.config())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn first_address_is_recorded_only_for_an_approved_request() {
    let a = Appliance::serve_with_config("[issuance]\nrecord_first_bootstrap_address = true\n");
    let dir = a.dir.path();
    let out = Command::new(bin())
        .args([
            "token",
            "create",
            "--ttl",
            "1h",
            "--node-name-pattern",
            "worker-*",
        ])
        .arg("--config")
        .arg(a.config())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let bound = kubeconfig_with_token(&a, &token);

    // A token bound to worker-* asking for db-1: denied, and nothing recorded for db-1.
    let out = create(dir, &bound, "db-1", &node_csr("db-1"), CLIENT_KUBELET);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = all_csrs(&a);
    assert!(has_condition(&db[0], "Denied"), "{db:#?}");
    assert!(
        node_show(&a, "db-1").contains("first-bootstrap-address: none"),
        "{}",
        node_show(&a, "db-1")
    );

    // The same token for worker-1: approved, and its address recorded.
    let out = create(
        dir,
        &bound,
        "worker-1",
        &node_csr("worker-1"),
        CLIENT_KUBELET,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        node_show(&a, "worker-1").contains("first-bootstrap-address: 127.0.0.1"),
        "{}",
        node_show(&a, "worker-1")
    );
}

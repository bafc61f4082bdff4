//! The server over real HTTPS: the real `kubectl` (default validation, create, get with the
//! Table columns, certificate approve, describe, watch) with an admin client certificate, and
//! slow-header clients cut off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{api_support, tools};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use api_support::*;
use kubesigner::app::serve::Server;
use kubesigner::config::{Config, IssuanceConfig};
use kubesigner::issue::{CaBundle, Issuer, admin_client_certificate};

fn config(dir: &Path) -> Config {
    let text = format!(
        "data_dir = {:?}\n[signer]\nkey = \"pkcs11:token=unused;object=unused\"\n[ca]\ncert_file = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"1s\"\n",
        dir.join("data"),
        dir.join("ca.pem")
    );
    Config::parse(&text).unwrap()
}

struct Running {
    server: Server,
    kubeconfig: std::path::PathBuf,
}

async fn start(dir: &Path) -> Running {
    let key = SoftKey::generate();
    let pem = ca_pem(&key);
    std::fs::write(dir.join("ca.pem"), &pem).unwrap();
    let cfg = config(dir);
    let server = Server::start_with_key(&cfg, key.clone(), Arc::new(|| true))
        .await
        .unwrap();
    let issuer = Issuer::new(
        CaBundle::from_pem(pem.as_bytes()).unwrap(),
        key,
        IssuanceConfig::default(),
    )
    .unwrap();
    let admin =
        admin_client_certificate(&issuer, SystemTime::now(), Duration::from_secs(3600)).unwrap();
    std::fs::write(dir.join("admin.crt"), &admin.certificate.pem_chain).unwrap();
    std::fs::write(dir.join("admin.key"), admin.key_pem.as_bytes()).unwrap();
    let kubeconfig = dir.join("admin.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: k\n  context: {{cluster: k, user: admin}}\ncurrent-context: k\n",
            server.local_addr().port(),
            dir.join("ca.pem").display(),
            dir.join("admin.crt").display(),
            dir.join("admin.key").display()
        ),
    )
    .unwrap();
    Running { server, kubeconfig }
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let kc = kubeconfig.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tools::kubectl(tools::Via::Flag { cache: "cache" }, &kc, &args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_get_approve_describe_delete() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path()).await;
    let kc = &run.kubeconfig;
    let manifest = dir.path().join("csr.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: node-csr-kubectl\nspec:\n  request: {}\n  signerName: {CLIENT}\n  usages: [\"digital signature\", \"client auth\"]\n  expirationSeconds: 86400\n",
            b64(&csr_pem("CN=system:node:k1,O=system:nodes"))
        ),
    )
    .unwrap();
    let (ok, out) = kubectl(kc, &["create", "-f", manifest.to_str().unwrap()]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("certificatesigningrequest.certificates.k8s.io/node-csr-kubectl created"),
        "{out}"
    );
    let (ok, out) = kubectl(kc, &["get", "csr"]).await;
    assert!(ok, "{out}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec![
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ],
        "{out}"
    );
    assert!(
        out.contains("kubesigner-admin") && out.contains("Pending") && out.contains("24h"),
        "{out}"
    );
    let (ok, out) = kubectl(kc, &["certificate", "approve", "node-csr-kubectl"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("approved"), "{out}");
    let (ok, out) = kubectl(kc, &["get", "csr", "node-csr-kubectl"]).await;
    assert!(ok && out.contains("Approved,Issued"), "{out}");
    let (ok, out) = kubectl(
        kc,
        &[
            "get",
            "csr",
            "node-csr-kubectl",
            "-o",
            "jsonpath={.status.certificate}",
        ],
    )
    .await;
    assert!(ok && out.len() > 100, "{out}");
    let (ok, out) = kubectl(kc, &["describe", "csr", "node-csr-kubectl"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("system:node:k1") && out.contains("Approved"),
        "{out}"
    );
    // Strict server-side validation: kubectl refuses an unknown field.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("node-csr-kubectl", "bad")
            .replace("  usages:", "  bogusField: 1\n  usages:"),
    )
    .unwrap();
    let (ok, out) = kubectl(kc, &["create", "-f", bad.to_str().unwrap()]).await;
    assert!(!ok && out.contains("bogusField"), "{out}");
    let (ok, out) = kubectl(kc, &["label", "csr", "node-csr-kubectl", "team=a"]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(kc, &["get", "csr", "-l", "team=a", "-o", "name"]).await;
    assert!(ok && out.contains("node-csr-kubectl"), "{out}");
    let (ok, out) = kubectl(kc, &["delete", "csr", "node-csr-kubectl"]).await;
    assert!(ok, "{out}");
    let (ok, out) = kubectl(kc, &["get", "csr", "node-csr-kubectl"]).await;
    assert!(!ok && out.contains("NotFound"), "{out}");
    run.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_anonymous_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path()).await;
    let addr = run.server.local_addr();
    let ca = dir.path().join("ca.pem");
    let result = tokio::task::spawn_blocking(move || {
        let mut roots = rustls::RootCertStore::empty();
        for c in kubesigner::tls::load_certs(&ca).unwrap() {
            roots.add(c).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().unwrap().with_root_certificates(roots).with_no_client_auth();
        let connect = || {
            let conn = rustls::ClientConnection::new(Arc::new(cfg.clone()), "localhost".try_into().unwrap()).unwrap();
            rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap())
        };
        // Anonymous request: 401 Status.
        let mut s = connect();
        s.write_all(b"GET /apis/certificates.k8s.io/v1/certificatesigningrequests HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");
        // Slow headers: the server closes the connection after header_read_timeout (1 s).
        let mut s = connect();
        s.sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap_or(0);
        (start.elapsed(), String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .await
    .unwrap();
    assert!(
        result.0 < Duration::from_secs(5),
        "not cut off: {:?}",
        result.0
    );
    assert!(!result.1.contains("200"), "{}", result.1);
    run.server.shutdown().await;
}

const PYTHON_CLIENT: &str = r#"
import base64, sys, threading
from kubernetes import client, watch
host, ca, crt, key, pem = sys.argv[1:6]
cfg = client.Configuration()
cfg.host = host
cfg.ssl_ca_cert = ca
cfg.cert_file = crt
cfg.key_file = key
api = client.CertificatesV1Api(client.ApiClient(cfg))
body = client.V1CertificateSigningRequest(
    metadata=client.V1ObjectMeta(name="py-csr"),
    spec=client.V1CertificateSigningRequestSpec(
        request=base64.b64encode(open(pem, "rb").read()).decode(),
        signer_name="kubernetes.io/kube-apiserver-client-kubelet",
        usages=["digital signature", "client auth"]))
created = api.create_certificate_signing_request(body)
rv = created.metadata.resource_version
names = [c.metadata.name for c in api.list_certificate_signing_request().items]
assert "py-csr" in names, names
seen = []
def watcher():
    for ev in watch.Watch().stream(api.list_certificate_signing_request, resource_version=rv, timeout_seconds=5):
        conds = [c.type for c in (ev["object"].status.conditions or [])]
        seen.append((ev["type"], conds, bool(ev["object"].status.certificate)))
        if ev["object"].status.certificate:
            return
t = threading.Thread(target=watcher); t.start()
csr = api.read_certificate_signing_request("py-csr")
csr.status.conditions = [client.V1CertificateSigningRequestCondition(
    type="Approved", status="True", reason="PythonApprove", message="approved by the python client")]
approved = api.replace_certificate_signing_request_approval("py-csr", csr)
assert [c.type for c in approved.status.conditions] == ["Approved"], approved.status
t.join()
assert any(s[0] == "MODIFIED" and "Approved" in s[1] for s in seen), seen
assert seen[-1][2], seen
print("python-ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_create_list_watch_approve() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path()).await;
    let pem = dir.path().join("node.csr");
    std::fs::write(&pem, csr_pem("CN=system:node:py1,O=system:nodes")).unwrap();
    let d = dir.path().to_owned();
    let host = format!("https://127.0.0.1:{}", run.server.local_addr().port());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg("-c")
            .arg(PYTHON_CLIENT)
            .arg(host)
            .arg(d.join("ca.pem"))
            .arg(d.join("admin.crt"))
            .arg(d.join("admin.key"))
            .arg(&pem)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("python-ok"), "{text}");
    run.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_sees_approval() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path()).await;
    let kc = run.kubeconfig.clone();
    let manifest = dir.path().join("csr.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: watched\nspec:\n  request: {}\n  signerName: {CLIENT}\n  usages: [\"digital signature\", \"client auth\"]\n",
            b64(&csr_pem("CN=system:node:w1,O=system:nodes"))
        ),
    )
    .unwrap();
    assert!(
        kubectl(&kc, &["create", "-f", manifest.to_str().unwrap()])
            .await
            .0
    );
    let kc2 = kc.clone();
    let watcher = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kc2)
            .args(["get", "csr", "-w", "--request-timeout=4s"])
            .env("KUBECACHEDIR", kc2.parent().unwrap().join("cache-w"))
            .output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (ok, out) = kubectl(&kc, &["certificate", "approve", "watched"]).await;
    assert!(ok, "{out}");
    let out = watcher.await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Pending") && text.contains("Approved"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run.server.shutdown().await;
}

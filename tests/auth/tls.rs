//! TLS + client-certificate authentication with real handshakes: a tokio-rustls client, and
//! the real `openssl s_client` for protocol versions, cipher suites and ALPN.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::auth;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use auth::Pki;
use kubesigner::authn::{AuthMethod, Authenticator, AuthnOutcome, BootstrapTokens, StaticTokens};
use kubesigner::tls::{client_ca_roots, load_certs, load_private_key, server_config};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const STATIC_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server saw on one connection.
#[derive(Debug)]
enum Event {
    HandshakeFailed(String),
    Answered(String),
}

struct Server {
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<Event>,
    _data: tempfile::TempDir,
}

/// The answer line for one authenticated request.
fn describe(out: &AuthnOutcome, alpn: Option<&[u8]>) -> String {
    let alpn = alpn.map(|a| String::from_utf8_lossy(a).into_owned());
    match out {
        AuthnOutcome::Authenticated(id) => {
            let method = match id.method {
                AuthMethod::ClientCertificate => "cert",
                AuthMethod::StaticToken => "static",
                AuthMethod::BootstrapToken(_) => "bootstrap",
            };
            format!(
                "user={} groups={} method={method} alpn={}",
                id.user,
                id.groups.join(","),
                alpn.unwrap_or_default()
            )
        }
        AuthnOutcome::Anonymous => "anonymous".into(),
        AuthnOutcome::Rejected(_) => "rejected".into(),
    }
}

async fn serve_one(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    authn: Arc<Authenticator>,
    tx: mpsc::UnboundedSender<Event>,
) {
    let mut tls = match acceptor.accept(tcp).await {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.send(Event::HandshakeFailed(e.to_string()));
            return;
        }
    };
    let mut line = String::new();
    let mut reader = BufReader::new(&mut tls);
    let read = tokio::time::timeout(IO_TIMEOUT, reader.read_line(&mut line)).await;
    drop(reader);
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        let _ = tx.send(Event::Answered("no request".into()));
        return;
    }
    let (_, conn) = tls.get_ref();
    let header = line.trim_end();
    let header = (!header.is_empty()).then_some(header.as_bytes());
    let out = authn.authenticate(conn.peer_certificates(), header, SystemTime::now());
    let answer = describe(&out, conn.alpn_protocol());
    let _ = tls.write_all(format!("{answer}\n").as_bytes()).await;
    let _ = tls.shutdown().await;
    let _ = tx.send(Event::Answered(answer));
}

async fn start(pki: &Pki) -> Server {
    start_with_roots(pki, load_certs(&pki.path("ca.crt")).unwrap()).await
}

async fn start_with_roots(
    pki: &Pki,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Server {
    let cfg = server_config(
        load_certs(&pki.path("server.crt")).unwrap(),
        load_private_key(&pki.path("server.key")).unwrap(),
        roots,
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let csv = format!("{STATIC_TOKEN},ops-user,42,\"ops\"\n");
    let authn = Arc::new(Authenticator::from_parts(
        StaticTokens::parse(csv.as_bytes(), Path::new("t.csv")).unwrap(),
        BootstrapTokens::open(&data.path().join("kubesigner.db")).unwrap(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_one(acceptor.clone(), tcp, authn.clone(), tx.clone()));
        }
    });
    Server {
        addr,
        events,
        _data: data,
    }
}

/// Connects with tokio-rustls (optionally with client certificate `<cert>.crt`), sends one
/// header line, returns the server's answer line.
async fn request(
    addr: SocketAddr,
    pki: &Pki,
    cert: Option<&str>,
    header: &str,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(load_certs(&pki.path("ca.crt")).unwrap());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match cert {
        Some(name) => builder
            .with_client_auth_cert(
                load_certs(&pki.path(&format!("{name}.crt"))).unwrap(),
                load_private_key(&pki.path(&format!("{name}.key"))).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let exchange = async {
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(format!("{header}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        let n = BufReader::new(tls)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed without an answer".to_owned());
        }
        Ok(line.trim_end().to_owned())
    };
    tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .map_err(|_| "timeout".to_owned())?
}

async fn next_event(server: &mut Server) -> Event {
    tokio::time::timeout(IO_TIMEOUT, server.events.recv())
        .await
        .expect("server event")
        .expect("server alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_certificate_authenticates_over_h2() {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "node1",
        "/O=system:nodes/CN=system:node:node1",
        "clientAuth",
        None,
    );
    let mut server = start(&pki).await;
    let answer = request(server.addr, &pki, Some("node1"), "").await.unwrap();
    assert_eq!(
        answer,
        "user=system:node:node1 groups=system:nodes,system:authenticated method=cert alpn=h2"
    );
    match next_event(&mut server).await {
        Event::Answered(seen) => assert_eq!(seen, answer),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_organization_becomes_a_group() {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "admin",
        "/O=system:masters/O=ops/CN=kubesigner-admin",
        "clientAuth",
        None,
    );
    let server = start(&pki).await;
    let answer = request(server.addr, &pki, Some("admin"), "").await.unwrap();
    assert_eq!(
        answer,
        "user=kubesigner-admin groups=system:masters,ops,system:authenticated method=cert alpn=h2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_serving_certificate_cannot_log_in() {
    let pki = Pki::new();
    pki.leaf(
        "ca",
        "serving",
        "/O=system:nodes/CN=system:node:node1",
        "serverAuth",
        Some("DNS:node1"),
    );
    let mut server = start(&pki).await;
    let result = request(server.addr, &pki, Some("serving"), "").await;
    assert!(
        result.is_err(),
        "serving certificate was accepted: {result:?}"
    );
    match next_event(&mut server).await {
        Event::HandshakeFailed(e) => assert!(e.contains("extended key usage"), "{e}"),
        other => panic!("server did not refuse the handshake: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    pki.ca("other", "other-ca");
    pki.leaf(
        "other",
        "stranger",
        "/O=system:masters/CN=mallory",
        "clientAuth",
        None,
    );
    let mut server = start(&pki).await;
    assert!(
        request(server.addr, &pki, Some("stranger"), "")
            .await
            .is_err()
    );
    assert!(matches!(
        next_event(&mut server).await,
        Event::HandshakeFailed(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_work_without_a_client_certificate() {
    let pki = Pki::new();
    let server = start(&pki).await;
    let ok = request(server.addr, &pki, None, &format!("Bearer {STATIC_TOKEN}")).await;
    assert_eq!(
        ok.unwrap(),
        "user=ops-user groups=ops,system:authenticated method=static alpn=h2"
    );
    let none = request(server.addr, &pki, None, "").await.unwrap();
    assert_eq!(none, "anonymous");
    let bad = request(
        server.addr,
        &pki,
        None,
        "Bearer 0123456789abcdef0123456789abcdee",
    )
    .await;
    assert_eq!(bad.unwrap(), "rejected");
}

/// Runs `openssl s_client` against the server; returns (success, output).
async fn s_client(addr: SocketAddr, pki: &Pki, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        "localhost",
    ])
    .arg("-CAfile")
    .arg(pki.path("ca.crt"))
    .args(args)
    .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = out.status.success() && !text.contains("Cipher is (NONE)");
    (ok, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_sees_only_modern_tls() {
    let pki = Pki::new();
    let mut server = start(&pki).await;

    // TLS 1.1 (client allowed to try it at security level 0): refused by the server.
    let (ok, text) = s_client(
        server.addr,
        &pki,
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
    )
    .await;
    assert!(!ok, "TLS 1.1 accepted:\n{text}");
    assert!(matches!(
        next_event(&mut server).await,
        Event::HandshakeFailed(_)
    ));

    // TLS 1.2 with CBC suites only (matching the server's ECDSA key, and RSA): refused.
    let cbc = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA:AES128-SHA";
    let (ok, text) = s_client(server.addr, &pki, &["-tls1_2", "-cipher", cbc]).await;
    assert!(!ok, "CBC suite accepted:\n{text}");
    assert!(matches!(
        next_event(&mut server).await,
        Event::HandshakeFailed(_)
    ));

    // TLS 1.2 with an ECDHE AEAD suite: accepted (the control for the two cases above).
    let (ok, text) = s_client(
        server.addr,
        &pki,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
    )
    .await;
    assert!(ok, "TLS 1.2 AEAD refused:\n{text}");
    assert!(text.contains("TLSv1.2"), "{text}");

    // ALPN: h2 offered and chosen.
    let (ok, text) = s_client(server.addr, &pki, &["-alpn", "h2,http/1.1"]).await;
    assert!(ok && text.contains("ALPN protocol: h2"), "{text}");
    let (ok, text) = s_client(server.addr, &pki, &["-alpn", "http/1.1"]).await;
    assert!(ok && text.contains("ALPN protocol: http/1.1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_chooses_the_cipher_suite() {
    let pki = Pki::new();
    let server = start(&pki).await;
    // The client prefers ChaCha20; the server's order puts AES-256-GCM first.
    let suites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";
    let (ok, text) = s_client(server.addr, &pki, &["-tls1_3", "-ciphersuites", suites]).await;
    assert!(ok, "{text}");
    assert!(text.contains("TLS_AES_256_GCM_SHA384"), "{text}");
    let cipher_line = text
        .lines()
        .find(|l| l.contains("Cipher is"))
        .unwrap_or_default();
    assert!(!cipher_line.contains("CHACHA20"), "{cipher_line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appliance_ca_and_extra_client_ca_files_are_both_trusted() {
    let pki = Pki::new();
    pki.ca("admins", "admin-ca");
    pki.ca("unused", "unused-ca");
    pki.leaf(
        "ca",
        "node1",
        "/O=system:nodes/CN=system:node:node1",
        "clientAuth",
        None,
    );
    pki.leaf(
        "admins",
        "admin",
        "/O=system:masters/CN=ops",
        "clientAuth",
        None,
    );
    pki.leaf(
        "unused",
        "stranger",
        "/O=system:masters/CN=mallory",
        "clientAuth",
        None,
    );
    let appliance = load_certs(&pki.path("ca.crt")).unwrap().remove(0);
    let roots = client_ca_roots(&appliance, &[pki.path("admins.crt")]).unwrap();
    assert_eq!(roots.len(), 2);
    let server = start_with_roots(&pki, roots).await;
    let node = request(server.addr, &pki, Some("node1"), "").await.unwrap();
    assert!(node.starts_with("user=system:node:node1 "), "{node}");
    let admin = request(server.addr, &pki, Some("admin"), "").await.unwrap();
    assert!(
        admin.starts_with("user=ops groups=system:masters,"),
        "{admin}"
    );
    assert!(
        request(server.addr, &pki, Some("stranger"), "")
            .await
            .is_err()
    );
}

//! `Server::start` with the CA key in a fresh SoftHSM token (the production path: URI from the
//! config, one token login, readiness from the token signer): a CSR approved over HTTPS is
//! signed by the token and the certificate verifies against the CA with openssl. The module is
//! loaded only in child processes started with `SOFTHSM2_CONF` already in their environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::api_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use api_support::*;
use kubesigner::app::serve::Server;
use kubesigner::config::Config;
use kubesigner::signer::{Algorithm, Pkcs11Uri, Settings, TokenSigner, UriOrigin, keygen};
use serde_json::json;

const CHILD_DIR: &str = "KUBESIGNER_TEST_HSM_DIR";
const ADMIN_TOKEN: &str = "fedcba9876543210fedcba9876543210";

fn child_dir() -> Option<PathBuf> {
    std::env::var(CHILD_DIR).ok().map(PathBuf::from)
}

/// Child phase 1: a P-256 key in the token and a self-signed CA certificate for it.
#[test]
fn child_make_ca() {
    let Some(dir) = child_dir() else { return };
    let uri_text = std::fs::read_to_string(dir.join("uri")).unwrap();
    let uri = Pkcs11Uri::parse(&uri_text, UriOrigin::ConfigFile).unwrap();
    keygen(&uri, Algorithm::EcdsaP256, None, Some("ca".to_owned())).unwrap();
    let signer = TokenSigner::open(&uri, Settings::default()).unwrap();
    let subject = kubesigner::issue::ca::parse_subject("CN=kubesigner-hsm-test-ca").unwrap();
    let cert = kubesigner::issue::ca::self_signed_ca(
        signer.as_ref(),
        subject,
        SystemTime::now(),
        Duration::from_secs(86400 * 30),
    )
    .unwrap();
    let pem = der::EncodePem::to_pem(&cert, der::pem::LineEnding::LF).unwrap();
    std::fs::write(dir.join("ca.pem"), pem).unwrap();
}

/// Child phase 2: the server, started exactly as `kubesigner serve` starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_serve() {
    let Some(dir) = child_dir() else { return };
    let cfg = Config::load(&dir.join("kubesigner.toml")).unwrap();
    let server = Server::start(&cfg).await.unwrap();
    std::fs::write(dir.join("port.tmp"), server.local_addr().port().to_string()).unwrap();
    std::fs::rename(dir.join("port.tmp"), dir.join("port")).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
}

fn child(dir: &Path, test: &str, conf: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &crate::support::tools::libtest_name(module_path!(), test),
            "--nocapture",
        ])
        .env(CHILD_DIR, dir)
        .env("SOFTHSM2_CONF", conf)
        .spawn()
        .unwrap()
}

#[test]
fn token_signed_certificate_over_https() {
    if child_dir().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm/softhsm-token");
    let out = Command::new(script)
        .arg(d.join("token"))
        .arg("api-test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vars: std::collections::BTreeMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let uri = format!(
        "pkcs11:token={};object=ca?module-path={}&pin-source=file:{}",
        vars["KUBESIGNER_TOKEN_LABEL"],
        vars["KUBESIGNER_PKCS11_MODULE"],
        vars["KUBESIGNER_PIN_FILE"]
    );
    std::fs::write(d.join("uri"), &uri).unwrap();
    let conf = &vars["SOFTHSM2_CONF"];
    let mut c = child(d, "child_make_ca", conf);
    assert!(c.wait().unwrap().success());
    std::fs::write(
        d.join("tokens.csv"),
        format!("{ADMIN_TOKEN},admin,1,\"system:masters\"\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("kubesigner.toml"),
        format!(
            "data_dir = {:?}\n[signer]\nkey = {:?}\n[ca]\ncert_file = {:?}\n[auth]\ntoken_auth_file = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n",
            d.join("data"), uri, d.join("ca.pem"), d.join("tokens.csv")
        ),
    )
    .unwrap();
    let mut server = child(d, "child_serve", conf);
    let start = Instant::now();
    let port: u16 = loop {
        if let Ok(p) = std::fs::read_to_string(d.join("port")) {
            break p.trim().parse().unwrap();
        }
        if start.elapsed() > Duration::from_secs(30) || server.try_wait().unwrap().is_some() {
            server.kill().ok();
            server.wait().unwrap();
            panic!("server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ca = d.join("ca.pem");
    let result = std::panic::catch_unwind(|| {
        let (code, _) = https_request(port, &ca, ADMIN_TOKEN, "GET", "/readyz", None);
        assert_eq!(code, 200);
        let (code, body) = https_request(
            port,
            &ca,
            ADMIN_TOKEN,
            "POST",
            CSRS,
            Some(&node_csr("hsm-csr", "hsm1")),
        );
        assert_eq!(code, 201, "{body}");
        let mut obj = body;
        obj["status"]["conditions"] =
            json!([{"type": "Approved", "status": "True", "reason": "Test"}]);
        let (code, body) = https_request(
            port,
            &ca,
            ADMIN_TOKEN,
            "PUT",
            &format!("{CSRS}/hsm-csr/approval"),
            Some(&obj),
        );
        assert_eq!(code, 200, "{body}");
        assert!(has_certificate(&body), "{body}");
        let pem = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            body["status"]["certificate"].as_str().unwrap(),
        )
        .unwrap();
        std::fs::write(d.join("leaf.pem"), pem).unwrap();
        let v = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&ca)
            .arg(d.join("leaf.pem"))
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
    });
    server.kill().unwrap();
    server.wait().unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

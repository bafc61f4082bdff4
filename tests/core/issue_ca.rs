//! CA certificate commands and issuance on a real SoftHSM token (fresh token per test; the
//! token is used in a child process or through the binary, so SOFTHSM2_CONF is set before the
//! module loads).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{issue_csr, issue_soft_key, issue_tools, signer_support, tools};

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::Decode;
use kubesigner::config::IssuanceConfig;
use kubesigner::issue::{self, CaBundle, CsrInput, Issuer, Requester, names};
use kubesigner::signer::{Pkcs11Uri, Settings, TokenSigner, UriOrigin};
use signer_support::TokenEnv;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_ca_cert(dir: &Path, pem: &str) {
    issue_tools::openssl_verify(dir, pem, pem, None);
    let findings = issue_tools::pkilint(dir, "ca", pem);
    assert!(findings.is_empty(), "pkilint: {findings:?}");
    let (_, der) = der::pem::decode_vec(pem.as_bytes()).unwrap();
    let cert = Certificate::from_der(&der).unwrap();
    let tbs = cert.tbs_certificate();
    let (crit, bc) = tbs.get_extension::<BasicConstraints>().unwrap().unwrap();
    assert!(crit && bc.ca && bc.path_len_constraint == Some(0));
    let (crit, ku) = tbs.get_extension::<KeyUsage>().unwrap().unwrap();
    assert!(crit && ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    assert!(
        tbs.get_extension::<SubjectKeyIdentifier>()
            .unwrap()
            .is_some()
    );
    assert_eq!(tbs.subject().to_string(), "CN=kubernetes");
}

#[test]
fn ca_init_lints_clean_for_p256_and_rsa() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "ca-init");
    for (label, alg) in [("ca-ec", "ecdsa-p256"), ("ca-rsa", "rsa-3072")] {
        tok.keygen(label, alg);
        let out = dir.path().join(format!("{label}.crt"));
        let o = tok.kubesigner(&[
            "ca",
            "init",
            "--uri",
            &tok.uri(label),
            "--out",
            out.to_str().unwrap(),
        ]);
        ok(&o, "ca init");
        check_ca_cert(dir.path(), &std::fs::read_to_string(&out).unwrap());
        // Never overwrites.
        let again = tok.kubesigner(&[
            "ca",
            "init",
            "--uri",
            &tok.uri(label),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!again.status.success());
    }
    // A bad subject is a usage error.
    let o = tok.kubesigner(&[
        "ca",
        "init",
        "--uri",
        &tok.uri("ca-ec"),
        "--out",
        "x.crt",
        "--subject",
        "nonsense",
    ]);
    assert_eq!(
        o.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);
}

#[test]
fn ca_csr_and_import_with_an_offline_root() {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "ca-import");
    let bundle = offline_root_in(dir.path(), &tok);
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2);
    // The root's own certificate is not the token key's: refused.
    let o = tok.kubesigner(&[
        "ca",
        "import",
        "--uri",
        &tok.uri("ca"),
        "--cert",
        dir.path().join("root.pem").to_str().unwrap(),
        "--out",
        dir.path().join("x.pem").to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not match the token key"));
    // A leaf (not a CA) is refused.
    tools::openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-subj",
            "/CN=leaf",
            "-out",
            "leaf.pem",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    );
    let o = tok.kubesigner(&[
        "ca",
        "import",
        "--uri",
        &tok.uri("ca"),
        "--cert",
        dir.path().join("leaf.pem").to_str().unwrap(),
        "--out",
        dir.path().join("y.pem").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a CA"));
}

/// `offline_root` with paths relative to `dir` resolved for the binary.
fn offline_root_in(dir: &Path, tok: &TokenEnv) -> std::path::PathBuf {
    tok.keygen("ca", "ecdsa-p256");
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    ok(
        &tok.kubesigner(&[
            "ca",
            "csr",
            "--uri",
            &tok.uri("ca"),
            "--out",
            &p("ca.csr"),
            "--subject",
            "CN=kubernetes-intermediate,O=example",
        ]),
        "ca csr",
    );
    tools::openssl(dir, &["req", "-in", "ca.csr", "-verify", "-noout"]);
    tools::openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "root.key",
            "-subj",
            "/CN=offline-root",
            "-days",
            "3650",
            "-out",
            "root.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n").unwrap();
    tools::openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "ca.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "1825",
            "-extfile",
            "ext.cnf",
            "-out",
            "inter.pem",
        ],
    );
    ok(
        &tok.kubesigner(&[
            "ca",
            "import",
            "--uri",
            &tok.uri("ca"),
            "--cert",
            &p("inter.pem"),
            "--chain",
            &p("root.pem"),
            "--out",
            &p("bundle.pem"),
        ]),
        "ca import",
    );
    dir.join("bundle.pem")
}

fn issue_and_check(dir: &Path, issuer: &Issuer, trust_pem: &str, chain_len: usize) {
    let subject = issue_soft_key::SoftKey::generate(issue_soft_key::SoftAlg::P256);
    let cfg = IssuanceConfig::default();
    let now = SystemTime::now();
    let inputs = [
        (
            names::KUBELET_CLIENT,
            issue_csr::csr(&subject, "CN=system:node:node1,O=system:nodes", &[], &[]),
            vec!["digital signature", "client auth"],
            "sslclient",
        ),
        (
            names::KUBELET_SERVING,
            issue_csr::csr(
                &subject,
                "CN=system:node:node1,O=system:nodes",
                &[
                    issue_csr::TSan::Dns("node1.example.com"),
                    issue_csr::TSan::Ip("10.0.0.5"),
                ],
                &[],
            ),
            vec!["digital signature", "server auth"],
            "sslserver",
        ),
    ];
    for (i, (signer, pem, usages, purpose)) in inputs.into_iter().enumerate() {
        let input = CsrInput {
            request_pem: pem,
            signer_name: signer.to_owned(),
            usages: usages.into_iter().map(str::to_owned).collect(),
            expiration_seconds: Some(86_400),
            requester: Requester::default(),
        };
        let v = issue::validate_input(&input, &cfg).unwrap();
        let cert = issuer.issue(&v, now).unwrap();
        assert_eq!(
            cert.pem_chain.matches("BEGIN CERTIFICATE").count(),
            chain_len
        );
        issue_tools::openssl_verify(dir, trust_pem, &cert.pem_chain, Some(purpose));
        let findings = issue_tools::pkilint(
            dir,
            &format!("leaf{i}"),
            &issue_tools::first_pem(&cert.pem_chain),
        );
        assert!(findings.is_empty(), "pkilint: {findings:?}");
    }
}

fn open_token(tok: &TokenEnv) -> Arc<TokenSigner> {
    let uri = Pkcs11Uri::parse(&tok.uri("ca"), UriOrigin::ConfigFile).unwrap();
    TokenSigner::open(&uri, Settings::default()).unwrap()
}

#[test]
fn token_issues_kubelet_certificates_self_signed_ca() {
    const T: &str = "token_issues_kubelet_certificates_self_signed_ca";
    if let Some(tok) = TokenEnv::child(T) {
        let signer = open_token(&tok);
        let ca_path = tok.dir.join("ca.crt");
        let bundle = CaBundle::load(&ca_path).unwrap();
        let issuer = Issuer::new(bundle, signer, IssuanceConfig::default()).unwrap();
        issue_and_check(
            &tok.dir,
            &issuer,
            &std::fs::read_to_string(&ca_path).unwrap(),
            1,
        );
        // Admin certificate for the dev mode.
        let admin =
            issue::admin_client_certificate(&issuer, SystemTime::now(), Duration::from_secs(3600))
                .unwrap();
        issue_tools::openssl_verify(
            &tok.dir,
            &std::fs::read_to_string(&ca_path).unwrap(),
            &admin.certificate.pem_chain,
            Some("sslclient"),
        );
        assert!(issue_tools::pkilint(&tok.dir, "admin", &admin.certificate.pem_chain).is_empty());
        assert!(
            admin
                .key_pem
                .starts_with(concat!("-----BEGIN ", "PRIVATE KEY-----"))
        );
        assert!(!format!("{admin:?}").contains("PRIVATE KEY"));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "issue-self");
    tok.keygen("ca", "ecdsa-p256");
    let ca = dir.path().join("ca.crt");
    ok(
        &tok.kubesigner(&[
            "ca",
            "init",
            "--uri",
            &tok.uri("ca"),
            "--out",
            ca.to_str().unwrap(),
        ]),
        "ca init",
    );
    tok.run_child(module_path!(), T, &[]);
}

#[test]
fn token_issues_with_an_imported_intermediate() {
    const T: &str = "token_issues_with_an_imported_intermediate";
    if let Some(tok) = TokenEnv::child(T) {
        let signer = open_token(&tok);
        let bundle = CaBundle::load(&tok.dir.join("bundle.pem")).unwrap();
        let issuer = Issuer::new(bundle, signer.clone(), IssuanceConfig::default()).unwrap();
        // Leaf + intermediate, not the root; trust anchored at the offline root.
        issue_and_check(
            &tok.dir,
            &issuer,
            &std::fs::read_to_string(tok.dir.join("root.pem")).unwrap(),
            2,
        );
        // A CA certificate for another key is refused by the issuer.
        let other = CaBundle::load(&tok.dir.join("root.pem")).unwrap();
        assert!(Issuer::new(other, signer, IssuanceConfig::default()).is_err());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "issue-inter");
    offline_root_in(dir.path(), &tok);
    tok.run_child(module_path!(), T, &[]);
}

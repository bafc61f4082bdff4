//! SIGHUP reload in `kubesigner serve`: a changed static token file takes effect (the new token
//! works, the removed one gets 401); a broken file keeps the previous tokens (and the log says
//! why); a client CA bundle added to the configuration is trusted after the reload; every
//! reload is counted in `kubesigner_reloads_total`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{ops, tools};

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ops::Served;

const DISCOVERY: &str = "/apis/certificates.k8s.io/v1";

fn status(s: &Served, args: &[&str]) -> String {
    let ca = s.state().join("ca.crt");
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&ca)
        .args(args)
        .arg(format!("https://{}{DISCOVERY}", s.addr))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn with_token(s: &Served, token: &str) -> String {
    status(s, &["-H", &format!("Authorization: Bearer {token}")])
}

fn with_cert(s: &Served, dir: &Path) -> String {
    let (c, k) = (dir.join("alice.crt"), dir.join("alice.key"));
    status(
        s,
        &["--cert", c.to_str().unwrap(), "--key", k.to_str().unwrap()],
    )
}

fn token_line(token: &str, user: &str) -> String {
    format!("{token},{user},uid-{user},\"system:masters\"\n")
}

/// An outside CA and a client certificate from it (CN=alice, O=system:masters).
fn outside_ca(dir: &Path) {
    tools::openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    tools::openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=outside-ca",
            "-days",
            "2",
            "-out",
            "extra-ca.crt",
        ],
    );
    tools::openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "alice.key",
        ],
    );
    tools::openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "alice.key",
            "-subj",
            "/O=system:masters/CN=alice",
            "-out",
            "alice.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "extendedKeyUsage = clientAuth\nkeyUsage = critical, digitalSignature\n",
    )
    .unwrap();
    tools::openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "alice.csr",
            "-CA",
            "extra-ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "alice.crt",
        ],
    );
}

#[test]
fn sighup_reloads_tokens_and_client_cas_and_keeps_the_old_on_a_broken_file() {
    let a = "a".repeat(32);
    let b = "b".repeat(32);
    let mut s = Served::setup("\n[auth]\ntoken_auth_file = \"tokens.csv\"\n");
    let tokens = s.state().join("tokens.csv");
    std::fs::write(&tokens, token_line(&a, "alice-token")).unwrap();
    let pki = s.dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    outside_ca(&pki);
    std::fs::copy(pki.join("extra-ca.crt"), s.state().join("extra-ca.crt")).unwrap();
    s.start();
    assert_eq!(with_token(&s, &a), "200");
    assert_eq!(with_token(&s, &b), "401");
    assert_ne!(
        with_cert(&s, &pki),
        "200",
        "an untrusted client CA was accepted"
    );

    // New token file: b in, a out.
    std::fs::write(&tokens, token_line(&b, "bob-token")).unwrap();
    s.signal("HUP");
    s.wait_log("reloaded on SIGHUP", 1, Duration::from_secs(10));
    assert_eq!(with_token(&s, &b), "200");
    assert_eq!(with_token(&s, &a), "401");

    // A broken file: the previous tokens stay.
    std::fs::write(&tokens, "this is not,a token file\n\"unterminated").unwrap();
    s.signal("HUP");
    s.wait_log("reloaded on SIGHUP", 2, Duration::from_secs(10));
    assert!(
        s.log().contains("keeping the previous version"),
        "{}",
        s.log()
    );
    assert_eq!(with_token(&s, &b), "200");
    assert_eq!(with_token(&s, &a), "401");

    // A client CA bundle added to the configuration: trusted after the reload.
    std::fs::write(&tokens, token_line(&b, "bob-token")).unwrap();
    let cfg = std::fs::read_to_string(s.config()).unwrap().replace(
        "token_auth_file = \"tokens.csv\"\n",
        "token_auth_file = \"tokens.csv\"\nclient_ca_files = [\"extra-ca.crt\"]\n",
    );
    std::fs::write(s.config(), cfg).unwrap();
    s.signal("HUP");
    s.wait_log("reloaded on SIGHUP", 3, Duration::from_secs(10));
    assert_eq!(with_cert(&s, &pki), "200", "{}", s.log());
    assert_eq!(with_token(&s, &b), "200");

    // A configuration that does not parse: nothing changes.
    std::fs::write(s.config(), "data_dir = [").unwrap();
    s.signal("HUP");
    s.wait_log("configuration does not load", 1, Duration::from_secs(10));
    assert_eq!(with_token(&s, &b), "200");
    assert_eq!(with_cert(&s, &pki), "200");

    let metrics = ops::kubectl_ok(&s.admin(), &["get", "--raw", "/metrics"]);
    assert!(
        metrics.contains("kubesigner_reloads_total{result=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubesigner_reloads_total{result=\"failed\"} 2"),
        "{metrics}"
    );
}

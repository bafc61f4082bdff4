//! `kubesigner hsm` through the built binary: the operator's smoke test, and every bad input
//! is one clear line on stderr with exit 64. A wrong PIN is tried exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::signer_support;
use crate::support::tools::assert_one_line_64;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use kubesigner::signer::{
    ErrorClass, Pkcs11Uri, Settings, SignerError, TokenSigner, UriOrigin, login_calls,
};
use signer_support::TokenEnv;

fn token(label: &str) -> (tempfile::TempDir, TokenEnv) {
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), label);
    (dir, tok)
}

fn check(tok: &TokenEnv, uri: &str) -> Output {
    tok.kubesigner(&["hsm", "check", "--uri", uri])
}

fn wrong_pin_file(tok: &TokenEnv) -> String {
    let p = tok.dir.join("wrong-pin");
    std::fs::write(&p, "not-the-pin").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

#[test]
fn check_signs_and_prints_fingerprint() {
    let (_d, tok) = token("check");
    let made = String::from_utf8(tok.keygen("ca", "ecdsa-p384").stdout).unwrap();
    let out = check(&tok, &tok.uri("ca"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("algorithm: ecdsa-p384"), "{text}");
    assert!(text.contains("verified"), "{text}");
    let fp = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("public key sha256:"))
            .map(str::to_owned)
    };
    assert_eq!(fp(&text), fp(&made));
    assert!(fp(&text).is_some());
}

#[test]
fn module_env_flag_reexecs_with_the_environment() {
    let (_d, tok) = token("modenv");
    tok.keygen("ca", "ecdsa-p256");
    // No SOFTHSM2_CONF in the environment: only --module-env provides it.
    let out = Command::new(signer_support::bin())
        .args(["hsm", "check", "--uri", &tok.uri("ca"), "--module-env"])
        .arg(format!("SOFTHSM2_CONF={}", tok.conf))
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let without = Command::new(signer_support::bin())
        .args(["hsm", "check", "--uri", &tok.uri("ca")])
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    assert!(!without.status.success());
}

#[test]
fn wrong_pin_exits_64_with_one_line() {
    let (_d, tok) = token("wrongpin");
    tok.keygen("ca", "ecdsa-p256");
    let uri = format!(
        "pkcs11:token={};object=ca?module-path={}&pin-source=file:{}",
        tok.label,
        tok.module,
        wrong_pin_file(&tok)
    );
    assert_one_line_64(&check(&tok, &uri), "C_Login failed: CKR_PIN_INCORRECT");
}

/// In-process: one `C_Login` call, then the error (class Pin, exit 64); the token's flags
/// show the failed attempt.
#[test]
fn wrong_pin_is_tried_exactly_once() {
    if let Some(tok) = TokenEnv::child("wrong_pin_is_tried_exactly_once") {
        let uri = format!(
            "pkcs11:token={};object=ca?module-path={}&pin-source=file:{}",
            tok.label,
            tok.module,
            tok.dir.join("wrong-pin").display()
        );
        let uri = Pkcs11Uri::parse(&uri, UriOrigin::CommandLine).unwrap();
        assert_eq!(login_calls(), 0);
        let err = TokenSigner::open(&uri, Settings::default()).unwrap_err();
        assert_eq!(login_calls(), 1, "the wrong PIN must be tried exactly once");
        assert!(
            matches!(
                &err,
                SignerError::Pkcs11 {
                    class: ErrorClass::Pin,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.exit_code(), 64);
        // The signer finalised the module: it can be initialised again here.
        let ctx = Pkcs11::new(&tok.module).unwrap();
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slot = ctx.get_slots_with_token().unwrap()[0];
        let info = ctx.get_token_info(slot).unwrap();
        assert!(info.user_pin_count_low(), "token shows no failed login");
        assert!(!info.user_pin_locked());
        return;
    }
    let (_d, tok) = token("once");
    tok.keygen("ca", "ecdsa-p256");
    wrong_pin_file(&tok);
    tok.run_child(module_path!(), "wrong_pin_is_tried_exactly_once", &[]);
}

#[test]
fn missing_module_exits_64() {
    let (_d, tok) = token("nomodule");
    let missing = tok.dir.join("no-such-module.so").display().to_string();
    let out = check(&tok, &tok.uri_with(&missing, "ca", ""));
    assert_one_line_64(&out, "cannot load PKCS#11 module");
}

#[test]
fn ambiguous_key_exits_64() {
    let (_d, tok) = token("ambiguous");
    tok.keygen("ca", "ecdsa-p256");
    // A second key with the same label (keygen refuses this, pkcs11-tool does not).
    let out = Command::new("pkcs11-tool")
        .args(["--module", &tok.module, "--login", "--pin", &tok.pin()])
        .args([
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "ca",
            "--id",
            "0b",
        ])
        .env("SOFTHSM2_CONF", &tok.conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_one_line_64(
        &check(&tok, &tok.uri("ca")),
        "2 private keys match object=ca",
    );
}

#[test]
fn unknown_uri_attribute_exits_64() {
    let (_d, tok) = token("unknownattr");
    let uri = tok
        .uri("ca")
        .replace(";object=ca", ";object=ca;flavour=mint");
    assert_one_line_64(
        &check(&tok, &uri),
        "unknown PKCS#11 URI attribute \"flavour\"",
    );
}

#[test]
fn unreadable_pin_file_exits_64() {
    let (_d, tok) = token("pinfile");
    tok.keygen("ca", "ecdsa-p256");
    let absent = tok.dir.join("absent-pin").display().to_string();
    let uri = format!(
        "pkcs11:token={};object=ca?module-path={}&pin-source={absent}",
        tok.label, tok.module
    );
    assert_one_line_64(&check(&tok, &uri), "cannot read PIN file");
    std::fs::set_permissions(&tok.pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_one_line_64(&check(&tok, &tok.uri("ca")), "readable by group or others");
}

#[test]
fn pin_value_on_command_line_exits_64() {
    let (_d, tok) = token("pinvalue");
    let uri = format!(
        "pkcs11:token={};object=ca?module-path={}&pin-value={}",
        tok.label,
        tok.module,
        tok.pin()
    );
    let out = check(&tok, &uri);
    assert_one_line_64(&out, "pin-value is refused on the command line");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&tok.pin()));
}

/// Without a public-key object, the public key comes from the certificate object.
#[test]
fn public_key_from_certificate_object() {
    let (_d, tok) = token("certonly");
    let made = String::from_utf8(tok.keygen("ca", "ecdsa-p256").stdout).unwrap();
    let field = |t: &str, k: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix(k).map(str::to_owned))
            .unwrap()
    };
    let id = field(&made, "id: ");
    let pem_start = made.find("-----BEGIN PUBLIC KEY-----").unwrap();
    let pub_pem = tok.dir.join("pub.pem");
    std::fs::write(&pub_pem, &made[pem_start..]).unwrap();
    // A certificate carrying the token key's public key (signed by a throw-away key).
    let other = tok.dir.join("other.key");
    let cert = tok.dir.join("ca.der");
    let run = |cmd: &mut Command| {
        let out = cmd.env("SOFTHSM2_CONF", &tok.conf).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
        ])
        .arg(&other));
    run(Command::new("openssl")
        .args([
            "x509", "-new", "-subj", "/CN=ca", "-days", "1", "-outform", "DER", "-key",
        ])
        .arg(&other)
        .arg("-force_pubkey")
        .arg(&pub_pem)
        .arg("-out")
        .arg(&cert));
    let p11 = |args: &[&str]| {
        let mut c = Command::new("pkcs11-tool");
        c.args(["--module", &tok.module, "--login", "--pin", &tok.pin()])
            .args(args);
        c
    };
    run(&mut p11(&[
        "--write-object",
        cert.to_str().unwrap(),
        "--type",
        "cert",
        "--id",
        &id,
        "--label",
        "ca-cert",
    ]));
    run(&mut p11(&[
        "--delete-object",
        "--type",
        "pubkey",
        "--id",
        &id,
    ]));
    let out = check(&tok, &tok.uri("ca"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        field(&text, "public key sha256: "),
        field(&made, "public key sha256: ")
    );
}

/// Without pin-source the PIN comes from the systemd credential `pkcs11-pin`.
#[test]
fn pin_from_systemd_credentials_directory() {
    let (_d, tok) = token("creds");
    tok.keygen("ca", "ecdsa-p256");
    let creds = tok.dir.join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let cred = creds.join("pkcs11-pin");
    std::fs::write(&cred, tok.pin()).unwrap();
    std::fs::set_permissions(&cred, std::fs::Permissions::from_mode(0o400)).unwrap();
    let uri = format!(
        "pkcs11:token={};object=ca?module-path={}",
        tok.label, tok.module
    );
    let run = |dir: Option<&std::path::Path>| {
        let mut c = Command::new(signer_support::bin());
        c.args(["hsm", "check", "--uri", &uri])
            .env("SOFTHSM2_CONF", &tok.conf)
            .env_remove("CREDENTIALS_DIRECTORY");
        if let Some(d) = dir {
            c.env("CREDENTIALS_DIRECTORY", d);
        }
        c.output().unwrap()
    };
    let out = run(Some(&creds));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_one_line_64(&run(None), "no PIN");
}

//! `kubesigner hsm keygen --audit` makes the audit key (ECDSA P-256, label `kubesigner-audit`
//! unless `--label`) in the CA key's token and prints its public key; it refuses to make a
//! second one with a label in use (`dev` made the first).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::ops;

use ops::Served;

#[test]
fn hsm_keygen_audit_makes_a_p256_key_once_per_label() {
    let s = Served::setup("");
    let cfg: toml::Table = toml::from_str(&std::fs::read_to_string(s.config()).unwrap()).unwrap();
    let uri = cfg["signer"]["key"].as_str().unwrap().to_owned();
    let conf = cfg["signer"]["environment"]["SOFTHSM2_CONF"]
        .as_str()
        .unwrap()
        .to_owned();
    let env = format!("SOFTHSM2_CONF={conf}");
    let base = [
        "hsm",
        "keygen",
        "--audit",
        "--uri",
        &uri,
        "--module-env",
        &env,
    ];

    let again = s.cli(&base);
    assert_eq!(
        again.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let mut args = base.to_vec();
    args.extend(["--label", "audit-2"]);
    let made = s.cli(&args);
    let out = String::from_utf8_lossy(&made.stdout);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(out.contains("label: audit-2"), "{out}");
    assert!(
        out.contains("ECDSA P-256") || out.contains("ecdsa-p256") || out.contains("P-256"),
        "{out}"
    );
    assert!(
        out.contains(concat!("-----BEGIN PUBLIC", " KEY-----")),
        "{out}"
    );
    // The PEM matches what `audit-key.pem` holds for dev's key: both are SubjectPublicKeyInfo.
    let dev_pem = std::fs::read_to_string(s.state().join("audit-key.pem")).unwrap();
    assert!(dev_pem.starts_with(concat!("-----BEGIN PUBLIC", " KEY-----")));
    // --audit with an algorithm is refused by the parser.
    let mut bad = base.to_vec();
    bad.extend(["--algorithm", "rsa-2048"]);
    assert_eq!(s.cli(&bad).status.code(), Some(2));
}

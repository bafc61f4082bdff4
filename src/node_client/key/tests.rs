//! Unit tests for `key.rs`.

use super::*;

#[test]
fn key_round_trips_through_pem_and_is_found_after_a_certificate() {
    let k = NodeKey::generate().unwrap();
    let pem = k.to_pem().unwrap();
    assert!(pem.starts_with(concat!("-----BEGIN EC ", "PRIVATE KEY-----\n")));
    let mixed = format!(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{}",
        pem.as_str()
    );
    let back = NodeKey::from_pem(mixed.as_bytes()).unwrap();
    assert_eq!(back.public_point(), k.public_point());
    assert_eq!(k.public_point().len(), 65);
    assert!(matches!(
        NodeKey::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(KeyError::NoKey)
    ));
}

#[test]
fn openssl_reads_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k.pem");
    std::fs::write(
        &p,
        NodeKey::generate().unwrap().to_pem().unwrap().as_bytes(),
    )
    .unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ec", "-noout", "-text", "-in"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("prime256v1"));
}

use super::*;

/// A P-256 SubjectPublicKeyInfo made with `openssl ec -pubout -outform DER`.
const SPKI_HEX: &str = "3059301306072a8648ce3d020106082a8648ce3d0301070342000418b28ff961214ca956e5fb7394216c72b1f995b5933fdadf7b5b33eb7e05de99d9fe48f9d2ca7f22b3cfa8858799bcbd62b92f883368468473e9f61694bfb991";

#[test]
fn digested_name_matches_a_vector_computed_outside() {
    // Expected value computed with Python's hashlib ('sha512_256') and
    // base64.urlsafe_b64encode(...).rstrip('='), following bootstrap.go's digestedName.
    let spki = hex::decode(SPKI_HEX).unwrap();
    let name = digested_name(
        &spki,
        "system:node:node1",
        &["system:nodes"],
        &["digital signature", "client auth"],
    );
    assert_eq!(name, "node-csr-okEnM5GlfS_P9QWK8CQJ5E3l46Iw9WRJ3MnuNpmkCJE");
    assert_eq!(name.len(), 52);
    // The delimiter keeps shifted boundaries apart.
    let a = digested_name(&spki, "system:node:ab", &["c"], &[]);
    let b = digested_name(&spki, "system:node:a", &["bc"], &[]);
    assert_ne!(a, b);
}

#[test]
fn spki_der_is_the_same_from_aws_lc_and_x509_types() {
    let k = NodeKey::generate().unwrap();
    assert_eq!(k.spki_der().unwrap(), spki(&k).unwrap().to_der().unwrap());
}

fn openssl_req_text(pem: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.csr");
    std::fs::write(&p, pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-verify", "-noout", "-text", "-nameopt", "RFC2253", "-in",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn client_csr_verifies_and_has_the_node_subject_and_no_sans() {
    let k = NodeKey::generate().unwrap();
    let node = NodeName::parse("node1").unwrap();
    let pem = build_csr(&k, &node, &CertKind::Client).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
    let text = openssl_req_text(&pem);
    assert!(
        text.contains("Subject: CN=system:node:node1,O=system:nodes"),
        "{text}"
    );
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    assert!(!text.contains("Subject Alternative Name"), "{text}");
}

#[test]
fn serving_csr_carries_the_requested_sans() {
    let k = NodeKey::generate().unwrap();
    let node = NodeName::parse("node1").unwrap();
    let kind = CertKind::Serving {
        dns: vec!["node1.example.com".into()],
        ips: vec!["10.0.0.7".parse().unwrap(), "fd00::7".parse().unwrap()],
    };
    let text = openssl_req_text(&build_csr(&k, &node, &kind).unwrap());
    assert!(text.contains("DNS:node1.example.com"), "{text}");
    assert!(text.contains("IP Address:10.0.0.7"), "{text}");
    assert!(text.contains("IP Address:FD00:0:0:0:0:0:0:7"), "{text}");
    assert_eq!(kind.signer_name(), SERVING_SIGNER);
    assert_eq!(kind.usages(), ["digital signature", "server auth"]);
    assert_eq!(kind.file_prefix(), "kubelet-server");
}

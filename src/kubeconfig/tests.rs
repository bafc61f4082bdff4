//! Unit tests for `kubeconfig.rs`.

use super::*;

#[test]
fn token_kubeconfig_renders_and_refuses_unsafe_values() {
    let mut k = Kubeconfig {
        server: "https://127.0.0.1:6443".into(),
        ca_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
        user_name: "kubelet-bootstrap".into(),
        credential: Credential::Token(SecretString::from("abcdef.0123456789abcdef")),
    };
    let text = k.render().unwrap();
    assert!(text.contains("token: abcdef.0123456789abcdef\n"));
    assert!(text.contains("server: https://127.0.0.1:6443\n"));
    k.server = "https://x\n  evil: 1".into();
    assert!(matches!(
        k.render(),
        Err(KubeconfigError::UnsafeValue { field: "server" })
    ));
}

#[test]
fn write_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    write_private_file(&p, b"x").unwrap();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read(&p).unwrap(), b"x");
}

use super::*;
use crate::kubeconfig::{Credential, Kubeconfig};
use secrecy::ExposeSecret;

const CA: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

#[test]
fn token_kubeconfig_written_by_the_writer_reads_back() {
    let k = Kubeconfig {
        server: "https://127.0.0.1:6443".into(),
        ca_pem: CA.into(),
        user_name: "kubelet-bootstrap".into(),
        credential: Credential::Token(SecretString::from("abcdef.0123456789abcdef")),
    };
    let text = k.render().unwrap();
    let c = parse_client_config(&text, Path::new("/etc/k/bootstrap.kubeconfig")).unwrap();
    assert_eq!(c.server, "https://127.0.0.1:6443");
    assert_eq!(
        c.ca,
        Some(PemSource::Data(Zeroizing::new(CA.as_bytes().to_vec())))
    );
    match c.auth {
        ClientAuth::Token(t) => assert_eq!(t.expose_secret(), "abcdef.0123456789abcdef"),
        other => panic!("expected a token, got {other:?}"),
    }
}

#[test]
fn node_kubeconfig_round_trips_with_kubelet_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kubelet.conf");
    let pem = dir.path().join("pki/kubelet-client-current.pem");
    let node = NodeKubeconfig {
        server: "https://10.0.0.1:6443".into(),
        ca: PemSource::File("/etc/kubernetes/pki/ca.crt".into()),
        tls_server_name: None,
        cert_and_key_file: pem.clone(),
    };
    node.write(&out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    for needle in [
        "name: default-cluster",
        "name: default-auth",
        "name: default-context",
        "current-context: default-context",
        "namespace: default",
        "certificate-authority: /etc/kubernetes/pki/ca.crt",
    ] {
        assert!(text.contains(needle), "{needle} missing in\n{text}");
    }
    let c = read_client_config(&out).unwrap();
    assert_eq!(c.server, "https://10.0.0.1:6443");
    assert_eq!(
        c.ca,
        Some(PemSource::File("/etc/kubernetes/pki/ca.crt".into()))
    );
    match c.auth {
        ClientAuth::Certificate { cert, key } => {
            assert_eq!(cert, PemSource::File(pem.clone()));
            assert_eq!(key, PemSource::File(pem));
        }
        other => panic!("expected a certificate, got {other:?}"),
    }
    // Inline CA data survives a round trip too.
    let node = NodeKubeconfig {
        ca: PemSource::Data(Zeroizing::new(CA.as_bytes().to_vec())),
        tls_server_name: Some("kubesigner".into()),
        ..node
    };
    node.write(&out).unwrap();
    let c = read_client_config(&out).unwrap();
    assert_eq!(
        c.ca,
        Some(PemSource::Data(Zeroizing::new(CA.as_bytes().to_vec())))
    );
    assert_eq!(c.tls_server_name.as_deref(), Some("kubesigner"));
}

#[test]
fn relative_paths_resolve_against_the_kubeconfig_directory() {
    let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://h:1\n    certificate-authority: ca.crt\nusers:\n- name: u\n  user:\n    client-certificate: pki/c.pem\n    client-key: /abs/k.pem\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
    let c = parse_client_config(text, Path::new("/etc/kubelet/kubeconfig")).unwrap();
    assert_eq!(c.ca, Some(PemSource::File("/etc/kubelet/ca.crt".into())));
    match c.auth {
        ClientAuth::Certificate { cert, key } => {
            assert_eq!(cert, PemSource::File("/etc/kubelet/pki/c.pem".into()));
            assert_eq!(key, PemSource::File("/abs/k.pem".into()));
        }
        other => panic!("expected a certificate, got {other:?}"),
    }
}

#[test]
fn bad_kubeconfigs_are_refused_with_the_reason() {
    let p = Path::new("k");
    let base = "apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: https://h:1\n";
    let no_ctx = format!("{base}contexts: []\ncurrent-context: x\n");
    assert!(matches!(
        parse_client_config(&no_ctx, p),
        Err(KubeconfigReadError::Missing {
            kind: "context",
            ..
        })
    ));
    let other_cluster =
        format!("{base}contexts:\n- name: x\n  context: {{cluster: d}}\ncurrent-context: x\n");
    assert!(matches!(
        parse_client_config(&other_cluster, p),
        Err(KubeconfigReadError::Missing {
            kind: "cluster",
            ..
        })
    ));
    let insecure = "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n";
    assert!(matches!(
        parse_client_config(insecure, p),
        Err(KubeconfigReadError::Insecure { .. })
    ));
    let bad_b64 = "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n    certificate-authority-data: '!!'\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n";
    assert!(matches!(
        parse_client_config(bad_b64, p),
        Err(KubeconfigReadError::Base64 { .. })
    ));
    let half = "clusters:\n- name: c\n  cluster:\n    server: https://h:1\nusers:\n- name: u\n  user:\n    client-certificate: c.pem\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
    assert!(matches!(
        parse_client_config(half, p),
        Err(KubeconfigReadError::HalfCertificate { .. })
    ));
    assert!(matches!(
        parse_client_config("[", p),
        Err(KubeconfigReadError::Parse { .. })
    ));
}

#[test]
fn oversized_kubeconfig_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big");
    std::fs::write(&p, vec![b'#'; (MAX_KUBECONFIG_BYTES + 1) as usize]).unwrap();
    assert!(matches!(
        read_client_config(&p),
        Err(KubeconfigReadError::TooLarge { .. })
    ));
}

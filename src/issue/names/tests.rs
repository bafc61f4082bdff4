use super::*;

#[test]
fn node_names() {
    assert!(NodeName::parse("node-1.example.com").is_some());
    assert!(NodeName::parse("").is_none());
    assert!(NodeName::parse("Node1").is_none());
    assert!(NodeName::parse("-a").is_none());
    assert!(NodeName::parse("a..b").is_none());
    assert!(NodeName::parse(&"a".repeat(254)).is_none());
    assert_eq!(
        NodeName::from_common_name("system:node:n1").map(|n| n.user_name()),
        Some("system:node:n1".to_owned())
    );
    assert!(NodeName::from_common_name("system:node:").is_none());
    assert!(NodeName::from_common_name("node:n1").is_none());
}

#[test]
fn signer_names() {
    assert_eq!(
        SignerName::parse(KUBELET_SERVING),
        Some(SignerName::KubeletServing)
    );
    assert_eq!(SignerName::parse(LEGACY_UNKNOWN), None);
    assert_eq!(SignerName::parse("example.com/custom"), None);
}

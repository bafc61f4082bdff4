//! Unit tests for `groups.rs`.

use super::*;

#[test]
fn exact_and_prefix_patterns() {
    let m = GroupMatcher::new(&[
        "system:bootstrappers".into(),
        "system:bootstrappers:*".into(),
    ])
    .unwrap();
    let g = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        m.first_match(&g(&["x", "system:bootstrappers"])),
        Some("system:bootstrappers")
    );
    assert!(
        m.first_match(&g(&["system:bootstrappers:kubeadm:default-node-token"]))
            .is_some()
    );
    assert!(m.first_match(&g(&["system:bootstrappersX"])).is_none());
    assert!(
        m.first_match(&g(&["system:nodes", "system:authenticated"]))
            .is_none()
    );
    assert!(GroupMatcher::new(&["a[".into()]).is_err());
}

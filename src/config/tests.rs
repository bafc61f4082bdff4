//! Unit tests for `config.rs`.

use std::time::Duration;

use super::*;

const BASE: &str =
    "data_dir = \"d\"\n[signer]\nkey = \"pkcs11:token=t\"\n[ca]\ncert_file = \"ca.crt\"\n";

#[test]
fn issuance_section_is_optional_and_typed() {
    let c = Config::parse(BASE).unwrap();
    assert_eq!(c.issuance, IssuanceConfig::default());
    assert_eq!(c.issuance.max_ttl, Duration::from_secs(8760 * 3600));
    assert!(
        !c.issuance
            .signers
            .iter()
            .any(|s| s == "kubernetes.io/kube-apiserver-client")
    );
    let c = Config::parse(&format!(
        "{BASE}[issuance]\nmax_ttl = \"720h\"\nauto_approve_groups = [\"system:bootstrappers\", \"system:kubelet-bootstrap\"]\nnode_inventory = \"nodes.toml\"\n"
    ))
    .unwrap();
    assert_eq!(c.issuance.max_ttl, Duration::from_secs(720 * 3600));
    assert_eq!(c.issuance.auto_approve_groups.len(), 2);
    assert_eq!(c.auth.admin_groups, vec!["system:masters".to_owned()]);
    assert!(Config::parse(&format!("{BASE}[issuance]\nmax_tll = \"1h\"\n")).is_err());
    // Admin and bootstrap groups have one source: [auth].
    for key in ["admin_groups", "bootstrap_groups"] {
        assert!(Config::parse(&format!("{BASE}[issuance]\n{key} = []\n")).is_err());
    }
}

use super::*;

#[test]
fn lease_schema_has_its_kind_and_microtime() {
    let doc = v3_group_version();
    let def = &doc["components"]["schemas"][LEASE_DEF];
    assert_eq!(def["x-kubernetes-group-version-kind"][0]["kind"], "Lease");
    assert!(doc["components"]["schemas"]["io.k8s.api.coordination.v1.LeaseSpec"].is_object());
}

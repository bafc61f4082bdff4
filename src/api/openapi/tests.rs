use super::*;

#[test]
fn v3_has_gvk_and_field_validation() {
    let doc = v3_group_version();
    let def = &doc["components"]["schemas"][CSR_DEF];
    assert_eq!(
        def["x-kubernetes-group-version-kind"][0]["kind"],
        "CertificateSigningRequest"
    );
    assert!(def["properties"]["spec"].is_object());
    let spec = def["properties"]["spec"].to_string();
    assert!(
        spec.contains(
            "#/components/schemas/io.k8s.api.certificates.v1.CertificateSigningRequestSpec"
        ),
        "{spec}"
    );
    let patch = &doc["paths"][format!("{BASE}/{{name}}")]["patch"];
    assert_eq!(patch["parameters"][1]["name"], "fieldValidation");
    let v2 = v2();
    assert!(v2["definitions"][CSR_DEF].is_object());
}

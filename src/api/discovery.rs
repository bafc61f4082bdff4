//! Legacy (non-aggregated) discovery documents and `/version` (reference §6.1). kubectl falls
//! back to these when the reply's Content-Type is plain `application/json`.

use serde_json::{Value, json};

/// The group served.
pub const GROUP: &str = "certificates.k8s.io";
/// The group-version served.
pub const GROUP_VERSION: &str = "certificates.k8s.io/v1";

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33",
        "gitVersion": format!("v1.33.0+kubesigner-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "", "compiler": "rustc", "platform": "linux/amd64",
    })
}

/// `GET /api`.
pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": [],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]})
}

fn group() -> Value {
    json!({"name": GROUP,
           "versions": [{"groupVersion": GROUP_VERSION, "version": "v1"}],
           "preferredVersion": {"groupVersion": GROUP_VERSION, "version": "v1"}})
}

/// `GET /apis`.
pub fn group_list(external: bool) -> Value {
    let mut groups = vec![group()];
    if external {
        groups.push(super::external_signing::lease::group_entry());
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/certificates.k8s.io`.
pub fn api_group() -> Value {
    let mut g = group();
    if let Some(o) = g.as_object_mut() {
        o.insert("kind".to_owned(), json!("APIGroup"));
        o.insert("apiVersion".to_owned(), json!("v1"));
    }
    g
}

/// `GET /apis/certificates.k8s.io/v1`.
pub fn resource_list() -> Value {
    let sub = |name: &str| {
        json!({"name": format!("certificatesigningrequests/{name}"), "singularName": "",
               "namespaced": false, "kind": "CertificateSigningRequest",
               "verbs": ["get", "patch", "update"]})
    };
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [
            {"name": "certificatesigningrequests", "singularName": "certificatesigningrequest",
             "namespaced": false, "kind": "CertificateSigningRequest",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
             "shortNames": ["csr"], "storageVersionHash": ""},
            sub("approval"),
            sub("status"),
        ]
    })
}

//! The OpenAPI v2 and v3 documents for the CSR API, generated from the `k8s-openapi` types
//! (their `schemars` schemas), not written by hand. kubectl's default validation reads them:
//! it looks for the `x-kubernetes-group-version-kind` of the object and for the
//! `fieldValidation` parameter (then validates server-side with `fieldValidation=Strict`).

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

const CSR_DEF: &str = "io.k8s.api.certificates.v1.CertificateSigningRequest";
const LIST_DEF: &str = "io.k8s.api.certificates.v1.CertificateSigningRequestList";
const STATUS_DEF: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const BASE: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// The group-version path in the v3 root document.
pub const V3_GV_PATH: &str = "apis/certificates.k8s.io/v1";

fn gvk(kind: &str) -> Value {
    json!([{"group": "certificates.k8s.io", "version": "v1", "kind": kind}])
}

/// The definitions (schemas) with refs under `prefix` (`#/definitions/` or
/// `#/components/schemas/`), the CSR types tagged with their group-version-kind.
fn definitions(prefix: &str) -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| {
            s.definitions_path = prefix
                .trim_start_matches('#')
                .trim_end_matches('/')
                .to_owned()
                .into();
            s.meta_schema = None;
        })
        .into_generator();
    generator.subschema_for::<CertificateSigningRequest>();
    let list_meta = generator.subschema_for::<ListMeta>();
    generator.subschema_for::<Status>();
    let mut defs = generator.take_definitions(true);
    defs.insert(
        LIST_DEF.to_owned(),
        json!({
            "description": "CertificateSigningRequestList is a collection of CertificateSigningRequest objects",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": list_meta,
                "items": {"type": "array", "items": {"$ref": format!("{prefix}{CSR_DEF}")}},
            },
        }),
    );
    for (name, kind) in [
        (CSR_DEF, "CertificateSigningRequest"),
        (LIST_DEF, "CertificateSigningRequestList"),
    ] {
        if let Some(Value::Object(def)) = defs.get_mut(name) {
            def.insert("x-kubernetes-group-version-kind".to_owned(), gvk(kind));
        }
    }
    defs
}

fn field_validation_param() -> Value {
    json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
           "type": "string", "uniqueItems": true,
           "description": "Strict, Warn or Ignore: what to do with unknown or duplicate fields"})
}

fn op(action: &str, kind: &str, params: Vec<Value>, reference: &str) -> Value {
    let gvk_one = json!({"group": "certificates.k8s.io", "version": "v1", "kind": kind});
    json!({
        "operationId": format!("{action}CertificatesV1CertificateSigningRequest"),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk_one,
        "parameters": params,
        "responses": {"200": {"description": "OK",
            "content": {"application/json": {"schema": {"$ref": reference}}},
            "schema": {"$ref": reference}}},
    })
}

fn paths(prefix: &str) -> Value {
    let csr = format!("{prefix}{CSR_DEF}");
    let list = format!("{prefix}{LIST_DEF}");
    let name = json!({"name": "name", "in": "path", "required": true, "type": "string",
                      "schema": {"type": "string"}});
    let item = json!({
        "get": op("get", "CertificateSigningRequest", vec![name.clone()], &csr),
        "put": op("put", "CertificateSigningRequest", vec![name.clone(), field_validation_param()], &csr),
        "patch": op("patch", "CertificateSigningRequest", vec![name.clone(), field_validation_param()], &csr),
        "delete": op("delete", "CertificateSigningRequest", vec![name.clone()], &format!("{prefix}{STATUS_DEF}")),
    });
    let sub = json!({
        "get": op("get", "CertificateSigningRequest", vec![name.clone()], &csr),
        "put": op("put", "CertificateSigningRequest", vec![name, field_validation_param()], &csr),
    });
    json!({
        BASE: {
            "get": op("list", "CertificateSigningRequest", vec![], &list),
            "post": op("post", "CertificateSigningRequest", vec![field_validation_param()], &csr),
        },
        format!("{BASE}/{{name}}"): item,
        format!("{BASE}/{{name}}/approval"): sub.clone(),
        format!("{BASE}/{{name}}/status"): sub,
    })
}

/// `GET /openapi/v2` (Swagger 2.0).
pub fn v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "kubesigner", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths("#/definitions/"),
        "definitions": definitions("#/definitions/"),
    })
}

/// `GET /openapi/v3/apis/certificates.k8s.io/v1` (OpenAPI 3.0).
pub fn v3_group_version() -> Value {
    json!({
        "openapi": "3.0.0",
        "info": {"title": "kubesigner", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths("#/components/schemas/"),
        "components": {"schemas": definitions("#/components/schemas/")},
    })
}

/// `GET /openapi/v3`: the discovery root pointing at the group-version documents (the Lease
/// one only in external-signing mode, `external`).
pub fn v3_root(external: bool) -> Value {
    let entry = |gv: &str| json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", env!("CARGO_PKG_VERSION"))});
    let mut paths = serde_json::Map::new();
    paths.insert(V3_GV_PATH.to_owned(), entry(V3_GV_PATH));
    if external {
        let lease = super::external_signing::lease_openapi::V3_GV_PATH;
        paths.insert(lease.to_owned(), entry(lease));
    }
    json!({ "paths": paths })
}

#[cfg(test)]
mod tests;

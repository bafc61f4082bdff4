//! The OpenAPI v3 document of `coordination.k8s.io/v1` (Leases), generated from the
//! `k8s-openapi` schemas. It advertises `fieldValidation`, so `kubectl create -f lease.yaml`
//! validates server-side (`lease_rules::decode`).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

const LEASE_DEF: &str = "io.k8s.api.coordination.v1.Lease";
const PREFIX: &str = "#/components/schemas/";
const BASE: &str = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases";

/// The group-version path in the v3 root document.
pub const V3_GV_PATH: &str = "apis/coordination.k8s.io/v1";

fn op(action: &str, params: &[Value], reference: &str) -> Value {
    json!({
        "operationId": format!("{action}CoordinationV1NamespacedLease"),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": "coordination.k8s.io", "version": "v1", "kind": "Lease"},
        "parameters": params,
        "responses": {"200": {"description": "OK",
            "content": {"application/json": {"schema": {"$ref": reference}}}}},
    })
}

/// `GET /openapi/v3/apis/coordination.k8s.io/v1`.
pub fn v3_group_version() -> Value {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| {
            s.definitions_path = PREFIX
                .trim_start_matches('#')
                .trim_end_matches('/')
                .to_owned()
                .into();
            s.meta_schema = None;
        })
        .into_generator();
    generator.subschema_for::<Lease>();
    generator.subschema_for::<Status>();
    let mut defs = generator.take_definitions(true);
    if let Some(Value::Object(def)) = defs.get_mut(LEASE_DEF) {
        def.insert(
            "x-kubernetes-group-version-kind".to_owned(),
            json!([{"group": "coordination.k8s.io", "version": "v1", "kind": "Lease"}]),
        );
    }
    let lease = format!("{PREFIX}{LEASE_DEF}");
    let ns =
        json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}});
    let name =
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}});
    let fv = json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
        "uniqueItems": true,
        "description": "Strict, Warn or Ignore: what to do with unknown or duplicate fields"});
    json!({
        "openapi": "3.0.0",
        "info": {"title": "kubesigner", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            BASE: {"post": op("create", &[ns.clone(), fv.clone()], &lease)},
            format!("{BASE}/{{name}}"): {
                "get": op("get", &[ns.clone(), name.clone()], &lease),
                "put": op("replace", &[ns.clone(), name.clone(), fv.clone()], &lease),
                "patch": op("patch", &[ns, name, fv], &lease),
            },
        },
        "components": {"schemas": defs},
    })
}

#[cfg(test)]
mod tests;

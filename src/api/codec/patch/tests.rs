use super::*;
use proptest::prelude::*;
use serde_json::json;

fn approved() -> Value {
    json!({"type": "Approved", "status": "True", "reason": "AutoApproved",
           "message": "ok", "lastUpdateTime": "2026-01-01T00:00:05Z"})
}

/// A stored CSR as the API serializes it.
fn stored(conditions: Vec<Value>) -> Value {
    json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "csr-abcde", "uid": "u-1", "resourceVersion": "7",
                     "labels": {"keep": "1", "drop": "2"}},
        "spec": {"request": "UEVN", "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["digital signature", "client auth"], "username": "system:node:n1"},
        "status": {"conditions": conditions}
    })
}

fn run(doc: &Value, kind: PatchKind, patch: Value) -> Result<Value, PatchError> {
    apply(doc, kind, &serde_json::to_vec(&patch).unwrap())
}

fn conditions(v: &Value) -> Vec<&str> {
    v["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect()
}

#[test]
fn content_types_map_to_kinds() {
    use PatchKind::*;
    let cases = [
        ("application/merge-patch+json", Some(Merge)),
        ("application/strategic-merge-patch+json", Some(Strategic)),
        ("application/json-patch+json", Some(Json)),
        ("Application/JSON-Patch+JSON; charset=utf-8", Some(Json)),
        ("application/apply-patch+yaml", None),
        ("application/json", None),
        ("", None),
    ];
    for (ct, want) in cases {
        assert_eq!(PatchKind::from_content_type(ct), want, "{ct}");
    }
}

/// kube-rs `patch_approval(name, &pp, &Patch::Merge(json!({"status": status})))`, the shape of
/// kube-rs's own CSR approval test: the whole conditions list.
#[test]
fn kube_rs_merge_patch_approval_sets_the_condition_list() {
    let patch = json!({"status": {"conditions": [approved()]}});
    for kind in [PatchKind::Merge, PatchKind::Strategic] {
        let out = run(&stored(vec![]), kind, patch.clone()).unwrap();
        assert_eq!(out["status"]["conditions"], json!([approved()]));
        assert_eq!(out["spec"], stored(vec![])["spec"]);
    }
}

/// kube-rs `patch_approval` with `Patch::Json`: append one condition.
#[test]
fn kube_rs_json_patch_approval_appends() {
    let patch = json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/status/conditions/-", "value": approved()}
    ]);
    let out = run(&stored(vec![]), PatchKind::Json, patch).unwrap();
    assert_eq!(conditions(&out), ["Approved"]);
}

/// kube-rs `patch_status(name, &pp, &Patch::Merge(json!({"status": {"certificate": ..}})))`.
#[test]
fn kube_rs_patch_status_sets_the_certificate_and_keeps_conditions() {
    let patch = json!({"status": {"certificate": "LS0tLS1CRUdJTg=="}});
    for kind in [PatchKind::Merge, PatchKind::Strategic] {
        let out = run(&stored(vec![approved()]), kind, patch.clone()).unwrap();
        assert_eq!(out["status"]["certificate"], "LS0tLS1CRUdJTg==");
        assert_eq!(conditions(&out), ["Approved"]);
    }
}

#[test]
fn merge_patch_replaces_the_list_so_a_condition_disappears() {
    // Hostile (or careless): Denied only. RFC 7386 replaces the list; Approved is gone in the
    // result, and the API's rule "Approved cannot be removed" refuses it.
    let denied = json!({"type": "Denied", "status": "True"});
    let patch = json!({"status": {"conditions": [denied]}});
    let out = run(&stored(vec![approved()]), PatchKind::Merge, patch).unwrap();
    assert_eq!(conditions(&out), ["Denied"]);
}

#[test]
fn strategic_patch_merges_conditions_by_type() {
    let denied = json!({"type": "Denied", "status": "True"});
    let patch =
        json!({"status": {"conditions": [denied, {"type": "Approved", "message": "re-checked"}]}});
    let out = run(&stored(vec![approved()]), PatchKind::Strategic, patch).unwrap();
    assert_eq!(conditions(&out), ["Approved", "Denied"]);
    assert_eq!(out["status"]["conditions"][0]["message"], "re-checked");
    assert_eq!(out["status"]["conditions"][0]["reason"], "AutoApproved");
}

#[test]
fn strategic_patch_directives() {
    let doc = stored(vec![
        approved(),
        json!({"type": "Failed", "status": "True"}),
    ]);
    let delete = json!({"status": {"conditions": [{"type": "Approved", "$patch": "delete"}]}});
    let out = run(&doc, PatchKind::Strategic, delete).unwrap();
    assert_eq!(conditions(&out), ["Failed"]);

    let replace =
        json!({"status": {"conditions": [{"$patch": "replace"}, {"type": "X", "status": "True"}]}});
    let out = run(&doc, PatchKind::Strategic, replace).unwrap();
    assert_eq!(conditions(&out), ["X"]);

    let order = json!({"status": {"$setElementOrder/conditions": [{"type": "Failed"}],
                                   "conditions": [{"type": "Failed", "message": "m"}]}});
    let out = run(&doc, PatchKind::Strategic, order).unwrap();
    assert_eq!(conditions(&out), ["Approved", "Failed"]);
    assert!(out["status"].get("$setElementOrder/conditions").is_none());
}

#[test]
fn strategic_patch_refuses_unknown_directives_and_missing_keys() {
    let doc = stored(vec![approved()]);
    let bad = [
        json!({"$patch": "replace", "spec": {}}),
        json!({"metadata": {"$retainKeys": ["labels"]}}),
        json!({"status": {"$deleteFromPrimitiveList/x": ["a"]}}),
        json!({"status": {"conditions": [{"type": "Approved", "$patch": "nuke"}]}}),
        json!({"spec": {"usages": [{"$patch": "replace"}]}}),
    ];
    for patch in bad {
        let err = run(&doc, PatchKind::Strategic, patch.clone()).unwrap_err();
        assert!(
            matches!(err, PatchError::UnsupportedDirective { .. }),
            "{patch}: {err:?}"
        );
    }
    let no_type = json!({"status": {"conditions": [{"status": "True"}]}});
    let err = run(&doc, PatchKind::Strategic, no_type).unwrap_err();
    assert!(matches!(err, PatchError::MissingMergeKey));
    let not_obj = json!({"status": {"conditions": ["Approved"]}});
    let err = run(&doc, PatchKind::Strategic, not_obj).unwrap_err();
    assert!(matches!(err, PatchError::MissingMergeKey));
}

#[test]
fn spec_changes_show_in_the_result_for_the_api_to_refuse() {
    let doc = stored(vec![]);
    let merge = json!({"spec": {"usages": ["digital signature", "client auth", "server auth"],
                                "username": "system:admin"}});
    for kind in [PatchKind::Merge, PatchKind::Strategic] {
        let out = run(&doc, kind, merge.clone()).unwrap();
        assert_eq!(out["spec"]["username"], "system:admin");
        assert_eq!(out["spec"]["usages"].as_array().unwrap().len(), 3);
    }
    let json = json!([{"op": "replace", "path": "/spec/signerName", "value": "example.com/x"}]);
    let out = run(&doc, PatchKind::Json, json).unwrap();
    assert_eq!(out["spec"]["signerName"], "example.com/x");
    let remove = json!([{"op": "remove", "path": "/status/conditions/0"}]);
    let out = run(&stored(vec![approved()]), PatchKind::Json, remove).unwrap();
    assert!(conditions(&out).is_empty());
}

#[test]
fn metadata_labels_merge_and_delete_with_null() {
    let patch = json!({"metadata": {"labels": {"drop": null, "new": "3"}}});
    for kind in [PatchKind::Merge, PatchKind::Strategic] {
        let out = run(&stored(vec![]), kind, patch.clone()).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"keep": "1", "new": "3"}));
    }
}

/// RFC 7386 appendix A examples (a selection).
#[test]
fn rfc7386_examples() {
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (doc, patch, want) in cases {
        assert_eq!(run(&doc, PatchKind::Merge, patch).unwrap(), want);
    }
    assert!(matches!(
        run(&json!({}), PatchKind::Merge, json!(["a"])),
        Err(PatchError::NotAnObject)
    ));
}

/// RFC 6902 appendix A examples (a selection), including the failing ones.
#[test]
fn rfc6902_examples() {
    let ok = [
        (
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
            json!({"baz": "qux", "foo": "bar"}),
        ),
        (
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
            json!({"foo": ["bar", "qux", "baz"]}),
        ),
        (
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        ),
        (
            json!({"/": 9, "~1": 10}),
            json!([{"op": "test", "path": "/~01", "value": 10}]),
            json!({"/": 9, "~1": 10}),
        ),
    ];
    for (doc, patch, want) in ok {
        assert_eq!(run(&doc, PatchKind::Json, patch).unwrap(), want);
    }
    let failing = [
        (
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
        ),
        (
            json!({"baz": "qux"}),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
        ),
        (
            json!({"/": 9}),
            json!([{"op": "test", "path": "/~01", "value": "10"}]),
        ),
    ];
    for (doc, patch) in failing {
        let err = run(&doc, PatchKind::Json, patch).unwrap_err();
        assert!(
            matches!(err, PatchError::OperationFailed { index: 0, .. }),
            "{err:?}"
        );
    }
    let err = run(
        &json!({}),
        PatchKind::Json,
        json!([{"op": "frobnicate", "path": "/a"}]),
    );
    assert!(matches!(err, Err(PatchError::InvalidOperation(_))));
    let err = run(&json!({}), PatchKind::Json, json!({"op": "add"}));
    assert!(matches!(err, Err(PatchError::NotAnArray)));
}

#[test]
fn a_failed_operation_changes_nothing_and_reports_its_index() {
    let doc = stored(vec![approved()]);
    let before = doc.clone();
    let patch = json!([
        {"op": "remove", "path": "/status/conditions/0"},
        {"op": "test", "path": "/metadata/resourceVersion", "value": "6"}
    ]);
    let err = run(&doc, PatchKind::Json, patch).unwrap_err();
    assert!(matches!(err, PatchError::OperationFailed { index: 1, .. }));
    assert_eq!(doc, before);
}

#[test]
fn bounds_on_size_operations_and_depth() {
    let doc = stored(vec![]);
    let big = vec![b' '; MAX_PATCH_BYTES + 1];
    assert!(matches!(
        apply(&doc, PatchKind::Merge, &big),
        Err(PatchError::TooLarge { .. })
    ));
    let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPS)
        .map(|_| json!({"op": "test", "path": "/kind", "value": "CertificateSigningRequest"}))
        .collect();
    assert!(matches!(
        run(&doc, PatchKind::Json, Value::Array(ops)),
        Err(PatchError::TooManyOperations { .. })
    ));
    let mut deep = json!("x");
    for _ in 0..MAX_DEPTH + 1 {
        deep = json!({ "a": deep });
    }
    for kind in [PatchKind::Merge, PatchKind::Strategic] {
        assert!(matches!(
            run(&doc, kind, json!({"metadata": deep.clone()})),
            Err(PatchError::TooDeep { .. })
        ));
    }
    // Nesting far past serde_json's recursion limit: a parse error, not a stack overflow.
    let hostile = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        apply(&doc, PatchKind::Json, hostile.as_bytes()),
        Err(PatchError::Parse(_))
    ));
    assert!(matches!(
        apply(&doc, PatchKind::Merge, b"{\"a\":"),
        Err(PatchError::Parse(_))
    ));
}

#[test]
fn copy_doubling_is_stopped_by_the_result_bound() {
    let doc = json!({"a": "x".repeat(1000)});
    let ops: Vec<Value> = (0..40)
        .map(|i| json!({"op": "copy", "from": "", "path": format!("/c{i}")}))
        .collect();
    let err = run(&doc, PatchKind::Json, Value::Array(ops)).unwrap_err();
    assert!(matches!(err, PatchError::ResultTooLarge), "{err:?}");
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let doc = stored(vec![approved()]);
        for kind in [PatchKind::Merge, PatchKind::Strategic, PatchKind::Json] {
            let _ = apply(&doc, kind, &body);
        }
    }

    #[test]
    fn arbitrary_json_patches_never_panic(
        ops in proptest::collection::vec(
            (prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test"]),
             prop::sample::select(vec!["", "/status", "/status/conditions", "/status/conditions/0",
                                       "/status/conditions/-", "/spec/usages/1", "/metadata/x~1y"]),
             prop::sample::select(vec!["", "/spec", "/status/conditions/0"])),
            0..12)
    ) {
        let doc = stored(vec![approved()]);
        let patch: Vec<Value> = ops.iter()
            .map(|(op, path, from)| json!({"op": op, "path": path, "from": from, "value": {"type": "X"}}))
            .collect();
        let _ = run(&doc, PatchKind::Json, Value::Array(patch));
    }
}

/// Real kube-rs callers often pass a whole typed object: `patch_approval(name, &pp,
/// &Patch::Merge(&CertificateSigningRequest { status: Some(..), ..Default::default() }))`.
/// k8s-openapi serializes the required `spec.request`/`spec.signerName` as empty strings, so
/// the merged result blanks the spec. Upstream's `/approval` and `/status` force spec back to
/// the stored value instead of refusing (reference §1.4); the API must do the same or this
/// common client breaks.
#[test]
fn kube_rs_typed_object_merge_patch_blanks_spec() {
    use k8s_openapi::api::certificates::v1 as c;
    let typed = c::CertificateSigningRequest {
        status: Some(c::CertificateSigningRequestStatus {
            conditions: Some(vec![c::CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some("AutoApproved".into()),
                ..Default::default()
            }]),
            certificate: None,
        }),
        ..Default::default()
    };
    let body = serde_json::to_vec(&typed).unwrap();
    let out = apply(&stored(vec![]), PatchKind::Merge, &body).unwrap();
    assert_eq!(conditions(&out), ["Approved"]);
    assert_eq!(out["spec"]["request"], "");
    assert_eq!(out["spec"]["signerName"], "");
    assert_eq!(
        out["spec"]["usages"],
        json!(["digital signature", "client auth"])
    );
    assert_eq!(out["metadata"]["name"], "csr-abcde");
}

/// Arbitrary JSON values up to a few levels deep, with keys that hit the CSR's special paths.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z$]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "status",
            "conditions",
            "type",
            "spec",
            "metadata",
            "$patch",
            "a",
            "$setElementOrder/conditions",
            "certificate",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..5).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_merge_and_strategic_patches_never_panic(patch in arb_json()) {
        let doc = stored(vec![approved()]);
        let body = serde_json::to_vec(&patch).unwrap();
        for kind in [PatchKind::Merge, PatchKind::Strategic] {
            if let Ok(out) = apply(&doc, kind, &body) {
                prop_assert!(out.is_object());
            }
        }
    }
}

//! In-process API tests against the router: discovery, the bootstrap/approval/issuance flows,
//! list/get/watch visibility, Table output, conflicts, and the signer-down backlog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::api_support;

use api_support::*;
use http::{Method, StatusCode};
use kubesigner::api::Limits;
use kubesigner::config::IssuanceConfig;
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_openapi_health_and_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let r = call(
        &h.api,
        &nobody(),
        Method::GET,
        "/apis/certificates.k8s.io/v1",
        None,
    )
    .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.body["resources"][0]["shortNames"], json!(["csr"]));
    for p in [
        "/version",
        "/api",
        "/apis",
        "/apis/certificates.k8s.io",
        "/openapi/v2",
        "/openapi/v3",
    ] {
        assert_eq!(
            call(&h.api, &nobody(), Method::GET, p, None).await.code,
            StatusCode::OK,
            "{p}"
        );
    }
    let root = call(&h.api, &nobody(), Method::GET, "/openapi/v3", None)
        .await
        .body;
    let url = root["paths"]["apis/certificates.k8s.io/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_owned();
    let gv = call(&h.api, &nobody(), Method::GET, &url, None).await;
    assert_eq!(gv.code, StatusCode::OK);
    assert!(gv.body["components"]["schemas"]["io.k8s.api.certificates.v1.CertificateSigningRequest"]["x-kubernetes-group-version-kind"].is_array());
    let anon = call_raw(&h.api, None, Method::GET, CSRS, &[], vec![]).await;
    assert_eq!(anon.code, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.body["reason"], "Unauthorized");
    assert_eq!(
        call_raw(&h.api, None, Method::GET, "/healthz", &[], vec![])
            .await
            .code,
        StatusCode::OK
    );
    assert_eq!(
        call_raw(&h.api, None, Method::GET, "/readyz", &[], vec![])
            .await
            .code,
        StatusCode::OK
    );
    h.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        call_raw(&h.api, None, Method::GET, "/readyz", &[], vec![])
            .await
            .code,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn bootstrap_csr_is_auto_approved_issued_and_spec_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let mut body = node_csr("node-csr-Ab3_x", "node1");
    body["spec"]["username"] = json!("system:admin");
    body["spec"]["groups"] = json!(["system:masters"]);
    body["status"] =
        json!({"conditions": [{"type": "Approved", "status": "True"}], "certificate": b64("x")});
    let r = create(&h.api, &bootstrap(&[]), &body).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["spec"]["username"], "system:bootstrap:abcdef");
    assert_eq!(
        r.body["spec"]["groups"],
        json!(["system:bootstrappers", "system:authenticated"])
    );
    assert_eq!(condition_types(&r.body), vec!["Approved"]);
    assert_eq!(r.body["status"]["conditions"][0]["reason"], "AutoApproved");
    assert!(has_certificate(&r.body));
    assert!(
        r.body["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // The certificate is a PEM chain for the node, signed by the CA.
    let pem = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        r.body["status"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        String::from_utf8(pem)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    // A second bootstrap for the live node waits for an admin.
    let r2 = create(&h.api, &bootstrap(&[]), &node_csr("second", "node1")).await;
    assert_eq!(r2.code, StatusCode::CREATED);
    assert!(condition_types(&r2.body).is_empty(), "{}", r2.body);
    // The node renews its own certificate: approved (renewal).
    let r3 = create(&h.api, &node("node1"), &node_csr("renew", "node1")).await;
    assert_eq!(condition_types(&r3.body), vec!["Approved"]);
    assert!(has_certificate(&r3.body));
}

#[tokio::test]
async fn token_binding_and_disabled_node_deny() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let r = create(&h.api, &bootstrap(&["worker-*"]), &node_csr("a", "db1")).await;
    assert_eq!(condition_types(&r.body), vec!["Denied"], "{}", r.body);
    let r = create(
        &h.api,
        &bootstrap(&["worker-*"]),
        &node_csr("b", "worker-1"),
    )
    .await;
    assert_eq!(condition_types(&r.body), vec!["Approved"]);
    h.api.store().set_node_disabled("worker-2", true).unwrap();
    let r = create(&h.api, &bootstrap(&[]), &node_csr("c", "worker-2")).await;
    assert_eq!(condition_types(&r.body), vec!["Denied"]);
    assert_eq!(r.body["status"]["conditions"][0]["reason"], "NodeDisabled");
    assert!(!has_certificate(&r.body));
}

#[tokio::test]
async fn seeds_flow_static_token_with_and_without_auto_approve_group() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let r = create(&h.api, &kubelet_bootstrap(), &node_csr("n1", "node1")).await;
    assert_eq!(r.code, StatusCode::CREATED);
    assert!(
        condition_types(&r.body).is_empty(),
        "waits for an admin without the flag"
    );
    // The static-token user may read its own CSR but not approve it.
    assert_eq!(
        get(&h.api, &kubelet_bootstrap(), "n1").await.code,
        StatusCode::OK
    );
    assert_eq!(
        decide(&h.api, &kubelet_bootstrap(), "n1", "Approved")
            .await
            .code,
        StatusCode::FORBIDDEN
    );
    let a = decide(&h.api, &admin(), "n1", "Approved").await;
    assert_eq!(a.code, StatusCode::OK, "{}", a.body);
    assert!(
        has_certificate(&a.body),
        "approval triggers signing: {}",
        a.body
    );
    assert!(
        a.body["status"]["conditions"][0]["lastUpdateTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let dir2 = tempfile::tempdir().unwrap();
    let key = SoftKey::generate();
    let pem = ca_pem(&key);
    let mut cfg = IssuanceConfig::default();
    cfg.auto_approve_groups
        .push("system:kubelet-bootstrap".to_owned());
    let h2 = harness_with(dir2.path(), key, pem, cfg, Limits::default());
    let r = create(&h2.api, &kubelet_bootstrap(), &node_csr("n1", "node1")).await;
    assert_eq!(condition_types(&r.body), vec!["Approved"]);
    assert!(has_certificate(&r.body));
}

#[tokio::test]
async fn deny_then_approve_is_invalid_and_conflicts_detected() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    create(&h.api, &kubelet_bootstrap(), &node_csr("x", "n9")).await;
    let stale = get(&h.api, &admin(), "x").await.body;
    let d = decide(&h.api, &admin(), "x", "Denied").await;
    assert_eq!(d.code, StatusCode::OK);
    assert_eq!(condition_types(&d.body), vec!["Denied"]);
    let a = decide(&h.api, &admin(), "x", "Approved").await;
    assert_eq!(a.code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["reason"], "Invalid");
    // Stale resourceVersion → 409 Conflict.
    let mut s = stale.clone();
    s["status"]["conditions"] = json!([{"type": "Approved", "status": "True"}]);
    let c = call(
        &h.api,
        &admin(),
        Method::PUT,
        &format!("{CSRS}/x/approval"),
        Some(&s),
    )
    .await;
    assert_eq!(c.code, StatusCode::CONFLICT);
    assert_eq!(c.body["reason"], "Conflict");
    // Name clash → 409 AlreadyExists.
    let e = create(&h.api, &kubelet_bootstrap(), &node_csr("x", "n9")).await;
    assert_eq!(e.code, StatusCode::CONFLICT);
    assert_eq!(e.body["reason"], "AlreadyExists");
}

#[tokio::test]
async fn visibility_selectors_paging_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    for (name, n) in [("a1", "n1"), ("a2", "n2"), ("a3", "n3")] {
        let mut b = node_csr(name, n);
        b["metadata"]["labels"] = json!({"team": name});
        assert_eq!(
            create(&h.api, &kubelet_bootstrap(), &b).await.code,
            StatusCode::CREATED
        );
    }
    create(&h.api, &node("n1"), &node_csr("own", "n1")).await;
    let names = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let all = call(&h.api, &admin(), Method::GET, CSRS, None).await.body;
    assert_eq!(names(&all), vec!["a1", "a2", "a3", "own"]);
    // A node sees those it requested and those naming it.
    let mine = call(&h.api, &node("n1"), Method::GET, CSRS, None)
        .await
        .body;
    assert_eq!(names(&mine), vec!["a1", "own"]);
    assert_eq!(
        get(&h.api, &node("n1"), "a2").await.code,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&h.api, &nobody(), Method::GET, CSRS, None).await.code,
        StatusCode::FORBIDDEN
    );
    let sel = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?labelSelector=team%3Da2"),
        None,
    )
    .await
    .body;
    assert_eq!(names(&sel), vec!["a2"]);
    let f = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?fieldSelector=metadata.name%3Da3"),
        None,
    )
    .await
    .body;
    assert_eq!(names(&f), vec!["a3"]);
    let p1 = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?limit=2"),
        None,
    )
    .await
    .body;
    assert_eq!(names(&p1), vec!["a1", "a2"]);
    let cont = p1["metadata"]["continue"].as_str().unwrap();
    let p2 = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?limit=2&continue={cont}"),
        None,
    )
    .await
    .body;
    assert_eq!(names(&p2), vec!["a3", "own"]);
    assert!(p2["metadata"]["continue"].is_null());
    let t = call_raw(
        &h.api,
        Some(admin()),
        Method::GET,
        CSRS,
        &[(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )],
        vec![],
    )
    .await
    .body;
    assert_eq!(t["kind"], "Table");
    let cols: Vec<_> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec![
            "Name",
            "Age",
            "SignerName",
            "Requestor",
            "RequestedDuration",
            "Condition"
        ]
    );
    assert_eq!(t["rows"][3]["cells"][5], "Approved,Issued");
    assert_eq!(t["rows"][0]["cells"][5], "Pending");
    assert_eq!(t["rows"][0]["cells"][3], "kubelet-bootstrap");
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn watch_sees_approval_replays_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    create(&h.api, &kubelet_bootstrap(), &node_csr("w1", "n1")).await;
    let (code, mut body) = open_watch(
        &h,
        &admin(),
        "fieldSelector=metadata.name%3Dw1&timeoutSeconds=30",
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let mut buf = String::new();
    let ev = next_event(&mut body, &mut buf).await.unwrap();
    assert_eq!(ev["type"], "ADDED");
    let rv0: u64 = ev["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    decide(&h.api, &admin(), "w1", "Approved").await;
    let ev = next_event(&mut body, &mut buf).await.unwrap();
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(condition_types(&ev["object"]), vec!["Approved"]);
    let ev = next_event(&mut body, &mut buf).await.unwrap();
    assert!(has_certificate(&ev["object"]), "{ev}");
    // From an old RV still in the window: replay.
    let (_, mut replay) = open_watch(
        &h,
        &admin(),
        &format!("resourceVersion={rv0}&timeoutSeconds=1"),
    )
    .await;
    let mut b2 = String::new();
    assert_eq!(
        next_event(&mut replay, &mut b2).await.unwrap()["type"],
        "MODIFIED"
    );
    assert_eq!(
        next_event(&mut replay, &mut b2).await.unwrap()["type"],
        "MODIFIED"
    );
    // The stream ends after timeoutSeconds.
    assert!(next_event(&mut replay, &mut b2).await.is_none());
    // After a restart the window is empty: a watch from an old RV opens and ends with one
    // ERROR event, 410 Expired (as kube-apiserver; clients list again).
    drop(h);
    let h2 = harness(dir.path());
    let (code, mut gone) = open_watch(&h2, &admin(), "resourceVersion=1").await;
    assert_eq!(code, StatusCode::OK);
    let mut b4 = String::new();
    let ev = next_event(&mut gone, &mut b4).await.unwrap();
    assert_eq!(ev["type"], "ERROR", "{ev}");
    assert_eq!(ev["object"]["kind"], "Status", "{ev}");
    assert_eq!(ev["object"]["code"], 410, "{ev}");
    assert_eq!(ev["object"]["reason"], "Expired", "{ev}");
    assert!(next_event(&mut gone, &mut b4).await.is_none());
    // A node's watch does not show other nodes' CSRs.
    create(&h2.api, &kubelet_bootstrap(), &node_csr("other", "n2")).await;
    create(&h2.api, &node("n3"), &node_csr("mine", "n3")).await;
    let (_, mut nb) = open_watch(&h2, &node("n3"), "timeoutSeconds=1").await;
    let mut b3 = String::new();
    let ev = next_event(&mut nb, &mut b3).await.unwrap();
    assert_eq!(ev["object"]["metadata"]["name"], "mine");
    assert!(next_event(&mut nb, &mut b3).await.is_none());
}

#[tokio::test]
async fn signer_down_keeps_approved_and_backlog_signs_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    h.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = create(&h.api, &bootstrap(&[]), &node_csr("down", "n1")).await;
    assert_eq!(condition_types(&r.body), vec!["Approved"]);
    assert!(!has_certificate(&r.body));
    assert_eq!(h.api.sign_backlog().await.unwrap(), 0);
    h.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.api.sign_backlog().await.unwrap(), 1);
    assert!(has_certificate(&get(&h.api, &admin(), "down").await.body));
}

#[tokio::test]
async fn delete_generate_name_status_and_metadata_update() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let mut b = node_csr("", "n1");
    b["metadata"] = json!({"generateName": "csr-"});
    let r = create(&h.api, &node("n1"), &b).await;
    let name = r.body["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("csr-") && name.len() == 9, "{name}");
    // /status: nobody writes it through the API, not even an admin.
    let mut s = r.body.clone();
    s["status"]["certificate"] = json!(b64(
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
    ));
    assert_eq!(
        call(
            &h.api,
            &admin(),
            Method::PUT,
            &format!("{CSRS}/{name}/status"),
            Some(&s)
        )
        .await
        .code,
        StatusCode::FORBIDDEN
    );
    // PUT on the object changes labels, never spec or status.
    let mut u = get(&h.api, &admin(), &name).await.body;
    u["metadata"]["labels"] = json!({"a": "b"});
    u["spec"]["signerName"] = json!("example.com/other");
    u["status"] = json!({});
    let up = call(
        &h.api,
        &admin(),
        Method::PUT,
        &format!("{CSRS}/{name}"),
        Some(&u),
    )
    .await;
    assert_eq!(up.code, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["metadata"]["labels"]["a"], "b");
    assert_eq!(up.body["spec"]["signerName"], CLIENT);
    assert!(has_certificate(&up.body));
    assert_eq!(
        call(
            &h.api,
            &node("n1"),
            Method::DELETE,
            &format!("{CSRS}/{name}"),
            None
        )
        .await
        .code,
        StatusCode::FORBIDDEN
    );
    let d = call(
        &h.api,
        &admin(),
        Method::DELETE,
        &format!("{CSRS}/{name}"),
        None,
    )
    .await;
    assert_eq!(d.code, StatusCode::OK);
    assert_eq!(d.body["status"], "Success");
    let g = get(&h.api, &admin(), &name).await;
    assert_eq!(g.code, StatusCode::NOT_FOUND);
    assert_eq!(g.body["reason"], "NotFound");
}

#[tokio::test]
async fn renewal_needs_a_node_identity_not_just_the_user_name() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let mut impostor = kubelet_bootstrap();
    impostor.user = "system:node:n1".to_owned();
    let r = create(&h.api, &impostor, &node_csr("imp", "n1")).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert!(condition_types(&r.body).is_empty(), "{}", r.body);
}

#[tokio::test]
async fn bookmarks_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    create(&h.api, &kubelet_bootstrap(), &node_csr("b1", "n1")).await;
    let rv = h.api.store().resource_version().unwrap().to_string();
    // One event parses as a single JSON object; several come back as the raw text.
    let types = |body: &Value| -> Vec<Value> {
        match body {
            Value::String(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            one => vec![one.clone()],
        }
    };
    let with = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1"),
        None,
    )
    .await;
    let evs = types(&with.body);
    let last = evs.last().unwrap();
    assert_eq!(last["type"], "BOOKMARK");
    assert_eq!(last["object"]["metadata"]["resourceVersion"], rv);
    assert_eq!(last["object"]["kind"], "CertificateSigningRequest");
    let without = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?watch=1&timeoutSeconds=1"),
        None,
    )
    .await;
    let evs = types(&without.body);
    assert!(evs.iter().all(|e| e["type"] != "BOOKMARK"), "{evs:?}");
}

#[tokio::test]
async fn patch_labels_and_json_patch_approval() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    create(&h.api, &kubelet_bootstrap(), &node_csr("p1", "n1")).await;
    let patch = |uri: String, ct: &'static str, body: Value| {
        let api = h.api.clone();
        async move {
            call_raw(
                &api,
                Some(admin()),
                Method::PATCH,
                &uri,
                &[("content-type", ct)],
                body.to_string().into_bytes(),
            )
            .await
        }
    };
    let r = patch(
        format!("{CSRS}/p1"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"team": "a"}}, "spec": {"signerName": "example.com/x"}}),
    )
    .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["metadata"]["labels"]["team"], "a");
    assert_eq!(r.body["spec"]["signerName"], CLIENT, "spec stays as stored");
    let add = json!([{"op": "add", "path": "/status/conditions", "value": [{"type": "Approved", "status": "True", "reason": "Patched"}]}]);
    let r = patch(
        format!("{CSRS}/p1/approval"),
        "application/json-patch+json",
        add,
    )
    .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.body);
    assert_eq!(condition_types(&r.body), vec!["Approved"]);
    assert!(
        has_certificate(&r.body),
        "approval by PATCH triggers signing"
    );
    // Removing the condition through a patch is refused like through PUT.
    let rm = json!([{"op": "remove", "path": "/status/conditions/0"}]);
    let r = patch(
        format!("{CSRS}/p1/approval"),
        "application/json-patch+json",
        rm,
    )
    .await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // Patching status.certificate is refused for everyone.
    let cert = json!({"status": {"certificate": b64("x")}});
    let r = patch(
        format!("{CSRS}/p1/status"),
        "application/merge-patch+json",
        cert,
    )
    .await;
    assert_eq!(r.code, StatusCode::FORBIDDEN);
    // A non-admin may not patch.
    let req = call_raw(
        &h.api,
        Some(kubelet_bootstrap()),
        Method::PATCH,
        &format!("{CSRS}/p1"),
        &[("content-type", "application/merge-patch+json")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(req.code, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn garbage_collection_keeps_approved_unsigned_and_issued_records() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    create(&h.api, &kubelet_bootstrap(), &node_csr("pending", "g1")).await;
    assert!(has_certificate(
        &create(&h.api, &bootstrap(&[]), &node_csr("issued", "g2"))
            .await
            .body
    ));
    h.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    create(&h.api, &bootstrap(&[]), &node_csr("waiting", "g3")).await;
    let cfg = kubesigner::config::GcConfig::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let soon = k8s_openapi::jiff::Timestamp::from_second(now + 60).unwrap();
    assert_eq!(h.api.collect_garbage(&cfg, soon).await.unwrap(), 0);
    let later = k8s_openapi::jiff::Timestamp::from_second(now + 25 * 3600).unwrap();
    assert_eq!(h.api.collect_garbage(&cfg, later).await.unwrap(), 2);
    let left = call(&h.api, &admin(), Method::GET, CSRS, None).await.body;
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        left["items"][0]["metadata"]["name"], "waiting",
        "approved, not yet signed: kept"
    );
    // The issued-certificate record outlives the CSR object.
    assert!(
        h.api
            .store()
            .node_state("g2", now)
            .unwrap()
            .unexpired_certificate
    );
}

#[tokio::test]
async fn a_bad_node_inventory_stops_the_server_with_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = SoftKey::generate();
    std::fs::write(d.join("ca.crt"), ca_pem(&key)).unwrap();
    std::fs::write(
        d.join("bad.toml"),
        "[nodes.node1]\naddresses = [\"not-an-ip\"]\n",
    )
    .unwrap();
    for inventory in ["bad.toml", "missing.toml"] {
        let text = format!(
            "data_dir = {:?}\n[signer]\nkey = \"pkcs11:token=unused;object=unused\"\n\
             [ca]\ncert_file = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n\
             [issuance]\nnode_inventory = {:?}\n",
            d.join("data"),
            d.join("ca.crt"),
            d.join(inventory),
        );
        let cfg = kubesigner::config::Config::parse(&text).unwrap();
        let started = kubesigner::app::serve::Server::start_with_key(
            &cfg,
            key.clone(),
            std::sync::Arc::new(|| true),
        )
        .await;
        let Err(e) = started else {
            panic!("{inventory}: the server started");
        };
        assert_eq!(e.exit_code(), 64, "{inventory}: {e}");
        assert!(e.to_string().contains("node_inventory"), "{e}");
    }
}

#[tokio::test]
async fn unknown_signer_names_are_stored_as_failed_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let mut body = node_csr("other-signer", "n1");
    body["spec"]["signerName"] = json!("example.com/foo");
    let r = create(&h.api, &admin(), &body).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    let stored = get(&h.api, &admin(), "other-signer").await.body;
    assert_eq!(condition_types(&stored), ["Failed"]);
    let cond = &stored["status"]["conditions"][0];
    assert_eq!(cond["reason"], "UnknownSigner");
    assert_eq!(
        cond["message"],
        "this appliance does not sign for signer name \"example.com/foo\""
    );
    assert!(!has_certificate(&stored));
    // Approving it changes nothing: Failed is terminal and nothing is signed.
    decide(&h.api, &admin(), "other-signer", "Approved").await;
    assert!(!has_certificate(
        &get(&h.api, &admin(), "other-signer").await.body
    ));
}

/// Exact routing (404 for anything that is not a route), `Allow` on every 405 (RFC 9110), no
/// core/v1 version advertised, and the Lease group absent outside external-signing mode.
#[tokio::test]
async fn api_edges_exact_routes_allow_header_and_no_leases() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let a = admin();
    for p in [
        "/apis/certificates.k8s.io/v1/certificatesigningrequestsXYZ",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests//approval",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/x/approval/y",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/x/other",
        "/api/v1",
        "/apis/coordination.k8s.io",
        "/apis/coordination.k8s.io/v1",
        "/apis/coordination.k8s.io/v1/leases",
        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x",
        "/openapi/v3/apis/coordination.k8s.io/v1",
        "/nothing",
    ] {
        let r = call(&h.api, &a, Method::GET, p, None).await;
        assert_eq!(r.code, StatusCode::NOT_FOUND, "{p}: {}", r.body);
    }
    assert_eq!(
        call(&h.api, &a, Method::GET, "/api", None).await.body["versions"],
        json!([])
    );
    let groups = call(&h.api, &a, Method::GET, "/apis", None).await.body;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 1, "{groups}");
    let root = call(&h.api, &a, Method::GET, "/openapi/v3", None)
        .await
        .body;
    assert_eq!(root["paths"].as_object().unwrap().len(), 1, "{root}");
    for (method, path, allow) in [
        (Method::DELETE, CSRS.to_owned(), "GET, POST"),
        (Method::POST, format!("{CSRS}/x"), "GET, PUT, PATCH, DELETE"),
        (
            Method::DELETE,
            format!("{CSRS}/x/approval"),
            "GET, PUT, PATCH",
        ),
        (Method::POST, format!("{CSRS}/x/status"), "GET, PUT, PATCH"),
        (Method::POST, "/apis".to_owned(), "GET"),
        (Method::PUT, "/version".to_owned(), "GET"),
    ] {
        let r = call(&h.api, &a, method.clone(), &path, None).await;
        assert_eq!(r.code, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(
            r.headers.get("allow").map(|v| v.to_str().unwrap()),
            Some(allow),
            "{method} {path}"
        );
    }
}

/// Authorization comes before the body: a caller who may not create or update CSRs is refused
/// (403) while its body has not even started to arrive, so it never holds a slot for it.
#[tokio::test]
async fn callers_without_the_verb_are_refused_before_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    for (method, path) in [
        (Method::POST, CSRS.to_owned()),
        (Method::PUT, format!("{CSRS}/x")),
        (Method::PUT, format!("{CSRS}/x/approval")),
        (Method::PATCH, format!("{CSRS}/x/approval")),
    ] {
        // A body that never sends a byte (the sender stays alive).
        let (_tx, body) = http_body_util::channel::Channel::<bytes::Bytes, std::io::Error>::new(1);
        let req = http::Request::builder()
            .method(method.clone())
            .uri(&path)
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let resp = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            h.api.handle_as(
                req,
                kubesigner::api::hooks::AuthnResult::Authenticated(nobody()),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: waited for the body"));
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
}

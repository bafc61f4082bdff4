//! An auto-approved create is one store transaction: the answer carries the certificate, the
//! object has one resourceVersion, a watcher sees a single ADDED event already complete, and
//! the audit log has create, approve and issue for it, in that order, at that version. Lists
//! page through the selectors pushed into SQL and answer with the stored objects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::api_support;

use api_support::*;
use http::{Method, StatusCode};

#[tokio::test]
async fn auto_approved_create_is_one_transaction_and_one_added_event() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let (code, mut body) = open_watch(&h, &admin(), "resourceVersion=0&timeoutSeconds=30").await;
    assert_eq!(code, StatusCode::OK);
    let r = create(&h.api, &bootstrap(&[]), &node_csr("once", "n1")).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert_eq!(condition_types(&r.body), vec!["Approved"]);
    assert!(has_certificate(&r.body), "{}", r.body);
    // The first write of a fresh store: create, approval and issuance share resourceVersion 1.
    assert_eq!(r.body["metadata"]["resourceVersion"], "1");

    let mut buf = String::new();
    let ev = next_event(&mut body, &mut buf).await.unwrap();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "once");
    assert!(has_certificate(&ev["object"]), "{ev}");
    assert_eq!(ev["object"], r.body, "the event and the answer differ");

    let records = h.api.store().audit_records().unwrap();
    let steps: Vec<(&str, &str, u64)> = records
        .iter()
        .filter(|a| a.csr_name == "once")
        .map(|a| (a.kind.as_str(), a.actor.as_str(), a.resource_version))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("create", "system:bootstrap:abcdef", 1),
            ("approve", "kubesigner", 1),
            ("issue", "kubesigner", 1)
        ]
    );
    let get = get(&h.api, &admin(), "once").await;
    assert_eq!(get.body, r.body);
}

#[tokio::test]
async fn signer_down_create_is_stored_approved_and_signed_later() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    h.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = create(&h.api, &bootstrap(&[]), &node_csr("later", "n2")).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert_eq!(condition_types(&r.body), vec!["Approved"]);
    assert!(!has_certificate(&r.body));
    h.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.api.sign_backlog().await.unwrap(), 1);
    assert!(has_certificate(&get(&h.api, &admin(), "later").await.body));
    let kinds: Vec<String> = h
        .api
        .store()
        .audit_records()
        .unwrap()
        .into_iter()
        .filter(|a| a.csr_name == "later")
        .map(|a| a.kind.to_string())
        .collect();
    assert_eq!(kinds, vec!["create", "approve", "issue"]);
}

#[tokio::test]
async fn list_pages_with_limit_continue_and_signer_selector() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    for i in 0..5 {
        let name = format!("p{i}");
        create(
            &h.api,
            &bootstrap(&[]),
            &node_csr(&name, &format!("node{i}")),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut cont = String::new();
    for _ in 0..5 {
        let path = format!(
            "{CSRS}?limit=2&fieldSelector=spec.signerName%3Dkubernetes.io%2Fkube-apiserver-client-kubelet&continue={cont}"
        );
        let r = call(&h.api, &admin(), Method::GET, &path, None).await;
        assert_eq!(r.code, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["kind"], "CertificateSigningRequestList");
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        assert!(items.iter().all(has_certificate));
        match r.body["metadata"]["continue"].as_str() {
            Some(c) => cont = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4"]);
    // Another signer's selector matches none; a node sees only its own.
    let r = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?fieldSelector=spec.signerName%3Dkubernetes.io%2Fkubelet-serving"),
        None,
    )
    .await;
    assert_eq!(r.body["items"], serde_json::json!([]));
    let r = call(&h.api, &node("node3"), Method::GET, CSRS, None).await;
    let own: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(own, vec!["p3"]);
}

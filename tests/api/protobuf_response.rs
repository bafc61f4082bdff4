//! Content negotiation for responses (reference §6.6): JSON whenever the client accepts it;
//! protobuf for a single object when the client accepts only protobuf; 406 for lists and
//! watches asked for in protobuf only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::api_support;

use api_support::*;
use http::StatusCode;
use http_body_util::BodyExt;

async fn get_with_accept(h: &Harness, path: &str, accept: &str) -> (StatusCode, String, Vec<u8>) {
    let req = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = h
        .api
        .handle_as(
            req,
            kubesigner::api::hooks::AuthnResult::Authenticated(admin()),
        )
        .await;
    let code = resp.status();
    let ct = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (code, ct, body)
}

#[tokio::test]
async fn protobuf_only_clients_get_protobuf_objects_and_406_for_lists() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    create(&h.api, &kubelet_bootstrap(), &node_csr("pb1", "n1")).await;
    let path = format!("{CSRS}/pb1");

    // The kubelet's Accept (protobuf, then JSON): JSON.
    let (code, ct, _) = get_with_accept(
        &h,
        &path,
        "application/vnd.kubernetes.protobuf, application/json",
    )
    .await;
    assert_eq!((code, ct.as_str()), (StatusCode::OK, "application/json"));

    // Protobuf only: a protobuf body that decodes to the same object as the JSON answer.
    let (code, ct, body) = get_with_accept(&h, &path, "application/vnd.kubernetes.protobuf").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(ct, "application/vnd.kubernetes.protobuf");
    assert_eq!(&body[..4], b"k8s\0");
    let mut decoded = kubesigner::api::codec::protobuf::decode_csr(&body).unwrap();
    // Go's protobuf has no "absent" for a plain string: an empty uid reads back as "".
    if decoded.spec.uid.as_deref() == Some("") {
        decoded.spec.uid = None;
    }
    let json = get(&h.api, &admin(), "pb1").await.body;
    let mut from_json: k8s_openapi::api::certificates::v1::CertificateSigningRequest =
        serde_json::from_value(json).unwrap();
    if from_json.spec.uid.as_deref() == Some("") {
        from_json.spec.uid = None;
    }
    assert_eq!(decoded.spec, from_json.spec);
    assert_eq!(decoded.metadata.name, from_json.metadata.name);
    assert_eq!(decoded.metadata.uid, from_json.metadata.uid);
    assert_eq!(
        decoded.status.as_ref().and_then(|s| s.certificate.clone()),
        from_json
            .status
            .as_ref()
            .and_then(|s| s.certificate.clone())
    );

    // Lists and watches are JSON only: 406 with a Status.
    for p in [CSRS.to_owned(), format!("{CSRS}?watch=1")] {
        let (code, ct, body) = get_with_accept(&h, &p, "application/vnd.kubernetes.protobuf").await;
        assert_eq!(code, StatusCode::NOT_ACCEPTABLE, "{p}");
        assert_eq!(ct, "application/json");
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status["reason"], "NotAcceptable");
    }
    // Something nobody produces: 406.
    let (code, _, _) = get_with_accept(&h, &path, "text/html").await;
    assert_eq!(code, StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn protobuf_create_body_reads_back_as_the_same_csr_as_json() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    // The body a kubelet sends on its rotation path: `k8s\0` + runtime.Unknown + the message
    // (the encoder is cross-checked against upstream's generated messages in tests/api/protobuf_k8s_pb.rs).
    let json_body = node_csr("pb-create", "n9");
    let csr: CertificateSigningRequest = serde_json::from_value(json_body.clone()).unwrap();
    let body = kubesigner::api::codec::protobuf::encode_csr(&csr);
    assert_eq!(&body[..4], b"k8s\0");
    let req = http::Request::post(CSRS)
        .header(
            http::header::CONTENT_TYPE,
            "application/vnd.kubernetes.protobuf",
        )
        .header(
            http::header::ACCEPT,
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let resp = h
        .api
        .handle_as(
            req,
            kubesigner::api::hooks::AuthnResult::Authenticated(kubelet_bootstrap()),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // The same request as JSON under another name, for comparison.
    let mut twin = json_body;
    twin["metadata"]["name"] = serde_json::json!("json-twin");
    create(&h.api, &kubelet_bootstrap(), &twin).await;
    let a = get(&h.api, &admin(), "pb-create").await.body;
    let b = get(&h.api, &admin(), "json-twin").await.body;
    assert_eq!(a["spec"], b["spec"], "spec from protobuf == spec from JSON");
    assert_eq!(condition_types(&a), condition_types(&b));
    assert!(a["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
}

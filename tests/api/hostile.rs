//! Hostile input: every case is answered with the right code and a Kubernetes Status, and
//! leaves the store exactly as it was (same resourceVersion, same objects).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{api_support, table};

use std::time::{Duration, Instant};

use api_support::*;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use kubesigner::api::Limits;
use kubesigner::authn::Identity;
use kubesigner::config::IssuanceConfig;
use serde_json::{Value, json};

struct Case {
    what: &'static str,
    who: Option<Identity>,
    method: Method,
    uri: String,
    content_type: &'static str,
    body: Vec<u8>,
    want: StatusCode,
}

fn case(
    what: &'static str,
    who: Identity,
    method: Method,
    uri: &str,
    body: Value,
    want: StatusCode,
) -> Case {
    Case {
        what,
        who: Some(who),
        method,
        uri: uri.to_owned(),
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        want,
    }
}

fn raw(
    what: &'static str,
    who: Identity,
    method: Method,
    uri: &str,
    ct: &'static str,
    body: Vec<u8>,
    want: StatusCode,
) -> Case {
    Case {
        what,
        who: Some(who),
        method,
        uri: uri.to_owned(),
        content_type: ct,
        body,
        want,
    }
}

fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = new;
    v
}

async fn snapshot(h: &Harness) -> (u64, Value) {
    let rv = h.api.store().resource_version().unwrap();
    let list = call(&h.api, &admin(), Method::GET, CSRS, None).await.body;
    (rv, list["items"].clone())
}

fn cases(pending: &Value, issued: &Value) -> Vec<Case> {
    let ok = node_csr("hostile", "h1");
    let appr = format!("{CSRS}/victim/approval");
    let cond = |t: &str, s: &str| json!({"type": t, "status": s});
    let p_conds = |c: Value| with(pending.clone(), &["status", "conditions"], c);
    let i_conds = |c: Value| with(issued.clone(), &["status", "conditions"], c);
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let not_csr_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    vec![
        raw(
            "oversized body",
            admin(),
            Method::POST,
            CSRS,
            "application/json",
            vec![b' '; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        raw(
            "deep JSON",
            admin(),
            Method::POST,
            CSRS,
            "application/json",
            format!(r#"{{"metadata":{{"name":"d"}},"x":{deep}}}"#).into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "wrong apiVersion",
            admin(),
            Method::POST,
            CSRS,
            with(
                ok.clone(),
                &["apiVersion"],
                json!("certificates.k8s.io/v1beta1"),
            ),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "wrong kind",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["kind"], json!("Pod")),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "unknown field with Strict",
            admin(),
            Method::POST,
            &format!("{CSRS}?fieldValidation=Strict"),
            with(ok.clone(), &["spec", "bogus"], json!(1)),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "bad fieldValidation value",
            admin(),
            Method::POST,
            &format!("{CSRS}?fieldValidation=Lax"),
            ok.clone(),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "bad base64 in spec.request",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["spec", "request"], json!("%%%not-base64%%%")),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "non-CSR PEM",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["spec", "request"], json!(b64(not_csr_pem))),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "garbage inside CSR PEM",
            admin(),
            Method::POST,
            CSRS,
            with(
                ok.clone(),
                &["spec", "request"],
                json!(b64(
                    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                )),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "name too long",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["metadata", "name"], json!("a".repeat(300))),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "unicode in name",
            admin(),
            Method::POST,
            CSRS,
            with(
                ok.clone(),
                &["metadata", "name"],
                json!("nöde-csr-\u{202e}x"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "slash in name",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["metadata", "name"], json!("a/b")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "dot-dot name",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["metadata", "name"], json!("..")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "no name",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["metadata"], json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "empty usages",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["spec", "usages"], json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "unknown usage",
            admin(),
            Method::POST,
            CSRS,
            with(
                ok.clone(),
                &["spec", "usages"],
                json!(["client auth", "root access"]),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "duplicate usage",
            admin(),
            Method::POST,
            CSRS,
            with(
                ok.clone(),
                &["spec", "usages"],
                json!(["client auth", "client auth"]),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "expirationSeconds below 600",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["spec", "expirationSeconds"], json!(10)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "legacy-unknown signer",
            admin(),
            Method::POST,
            CSRS,
            with(
                ok.clone(),
                &["spec", "signerName"],
                json!("kubernetes.io/legacy-unknown"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "malformed signerName",
            admin(),
            Method::POST,
            CSRS,
            with(ok.clone(), &["spec", "signerName"], json!("no-slash")),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "bootstrap token creating a serving CSR",
            bootstrap(&[]),
            Method::POST,
            CSRS,
            with(
                ok.clone(),
                &["spec", "signerName"],
                json!("kubernetes.io/kubelet-serving"),
            ),
            StatusCode::FORBIDDEN,
        ),
        case(
            "node creating a CSR for another node",
            node("other"),
            Method::POST,
            CSRS,
            ok.clone(),
            StatusCode::FORBIDDEN,
        ),
        case(
            "unauthorized user creating",
            nobody(),
            Method::POST,
            CSRS,
            ok.clone(),
            StatusCode::FORBIDDEN,
        ),
        raw(
            "malformed protobuf body",
            admin(),
            Method::POST,
            CSRS,
            "application/vnd.kubernetes.protobuf",
            b"k8s\0\xff\xff\xff".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        raw(
            "protobuf without envelope",
            admin(),
            Method::POST,
            CSRS,
            "application/vnd.kubernetes.protobuf",
            b"junk".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "stranger probing a missing name",
            nobody(),
            Method::GET,
            &format!("{CSRS}/nope"),
            Value::Null,
            StatusCode::FORBIDDEN,
        ),
        raw(
            "CBOR body",
            admin(),
            Method::POST,
            CSRS,
            "application/cbor",
            vec![0xa0],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        raw(
            "body not JSON",
            admin(),
            Method::POST,
            CSRS,
            "application/json",
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        raw(
            "body a JSON array",
            admin(),
            Method::POST,
            CSRS,
            "application/json",
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "dryRun",
            admin(),
            Method::POST,
            &format!("{CSRS}?dryRun=All"),
            ok.clone(),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "approval and denial together",
            admin(),
            Method::PUT,
            &appr,
            p_conds(json!([cond("Approved", "True"), cond("Denied", "True")])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "Approved with status False",
            admin(),
            Method::PUT,
            &appr,
            p_conds(json!([cond("Approved", "False")])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "duplicate condition type",
            admin(),
            Method::PUT,
            &appr,
            p_conds(json!([cond("Approved", "True"), cond("Approved", "True")])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "condition without type",
            admin(),
            Method::PUT,
            &appr,
            p_conds(json!([cond("", "True")])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "removing a condition",
            admin(),
            Method::PUT,
            &format!("{CSRS}/issued/approval"),
            i_conds(json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "changing a certificate",
            admin(),
            Method::PUT,
            &format!("{CSRS}/issued/status"),
            with(
                issued.clone(),
                &["status", "certificate"],
                json!(b64(not_csr_pem)),
            ),
            StatusCode::FORBIDDEN,
        ),
        case(
            "setting a certificate",
            admin(),
            Method::PUT,
            &format!("{CSRS}/victim/status"),
            with(
                pending.clone(),
                &["status", "certificate"],
                json!(b64(not_csr_pem)),
            ),
            StatusCode::FORBIDDEN,
        ),
        case(
            "approval by a non-admin",
            bootstrap(&[]),
            Method::PUT,
            &appr,
            p_conds(json!([cond("Approved", "True")])),
            StatusCode::FORBIDDEN,
        ),
        case(
            "approval with a bad resourceVersion",
            admin(),
            Method::PUT,
            &appr,
            with(
                p_conds(json!([cond("Approved", "True")])),
                &["metadata", "resourceVersion"],
                json!("abc"),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        case(
            "approval with a stale resourceVersion",
            admin(),
            Method::PUT,
            &appr,
            with(
                p_conds(json!([cond("Approved", "True")])),
                &["metadata", "resourceVersion"],
                json!("2"),
            ),
            StatusCode::CONFLICT,
        ),
        case(
            "approval with another name in the body",
            admin(),
            Method::PUT,
            &appr,
            with(
                p_conds(json!([cond("Approved", "True")])),
                &["metadata", "name"],
                json!("issued"),
            ),
            StatusCode::BAD_REQUEST,
        ),
        case(
            "approval of a missing CSR",
            admin(),
            Method::PUT,
            &format!("{CSRS}/nope/approval"),
            with(
                p_conds(json!([cond("Approved", "True")])),
                &["metadata", "name"],
                json!("nope"),
            ),
            StatusCode::NOT_FOUND,
        ),
        case(
            "get another's CSR",
            node("h9"),
            Method::GET,
            &format!("{CSRS}/victim"),
            Value::Null,
            StatusCode::FORBIDDEN,
        ),
        case(
            "delete by a non-admin",
            kubelet_bootstrap(),
            Method::DELETE,
            &format!("{CSRS}/victim"),
            Value::Null,
            StatusCode::FORBIDDEN,
        ),
        case(
            "delete a missing CSR",
            admin(),
            Method::DELETE,
            &format!("{CSRS}/nope"),
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        case(
            "bad boolean watch",
            admin(),
            Method::GET,
            &format!("{CSRS}?watch=yes"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        case(
            "negative timeoutSeconds",
            admin(),
            Method::GET,
            &format!("{CSRS}?watch=1&timeoutSeconds=-5"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        case(
            "non-numeric resourceVersion watch",
            admin(),
            Method::GET,
            &format!("{CSRS}?watch=1&resourceVersion=x"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        case(
            "unsupported field selector",
            admin(),
            Method::GET,
            &format!("{CSRS}?fieldSelector=spec.username%3Dx"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        case(
            "set-based label selector",
            admin(),
            Method::GET,
            &format!("{CSRS}?labelSelector=a%20in%20(b)"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        case(
            "bad continue token",
            admin(),
            Method::GET,
            &format!("{CSRS}?limit=1&continue=%21%21"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        case(
            "negative limit",
            admin(),
            Method::GET,
            &format!("{CSRS}?limit=-1"),
            Value::Null,
            StatusCode::BAD_REQUEST,
        ),
        case(
            "PATCH with a non-patch content type",
            admin(),
            Method::PATCH,
            &format!("{CSRS}/victim"),
            json!({}),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        case(
            "unknown path",
            admin(),
            Method::GET,
            "/api/v1/secrets",
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        case(
            "unknown subresource",
            admin(),
            Method::GET,
            &format!("{CSRS}/victim/exec"),
            Value::Null,
            StatusCode::NOT_FOUND,
        ),
        case(
            "POST to discovery",
            admin(),
            Method::POST,
            "/apis",
            json!({}),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ]
}

#[tokio::test]
async fn hostile_requests_get_the_right_code_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    assert_eq!(
        create(&h.api, &kubelet_bootstrap(), &node_csr("victim", "h1"))
            .await
            .code,
        StatusCode::CREATED
    );
    assert_eq!(
        create(&h.api, &bootstrap(&[]), &node_csr("issued", "h2"))
            .await
            .code,
        StatusCode::CREATED
    );
    let pending = get(&h.api, &admin(), "victim").await.body;
    let issued = get(&h.api, &admin(), "issued").await.body;
    assert!(has_certificate(&issued));
    let mut before = snapshot(&h).await;
    let all = cases(&pending, &issued);
    assert!(all.len() >= 30, "{} cases", all.len());
    // Every case runs; the differences are listed together at the end.
    let n = all.len();
    let mut failures = table::Failures::new();
    for c in all {
        let body = if c.body == b"null" {
            Vec::new()
        } else {
            c.body
        };
        let r = call_raw(
            &h.api,
            c.who,
            c.method,
            &c.uri,
            &[("content-type", c.content_type)],
            body,
        )
        .await;
        let what = format!("{} (body {})", c.what, r.body);
        failures.eq(&what, "code", r.code, c.want);
        failures.eq(&what, "kind", &r.body["kind"], &Value::from("Status"));
        failures.eq(
            &what,
            "body code",
            &r.body["code"],
            &Value::from(c.want.as_u16()),
        );
        let after = snapshot(&h).await;
        failures.check(after == before, || format!("{} changed the store", c.what));
        // Only the case that changed the store is listed, not every case after it.
        before = after;
    }
    failures.finish(n);
}

#[tokio::test]
async fn credentials_rejected_or_missing_are_401() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    let req = http::Request::post(CSRS)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            node_csr("x", "n").to_string(),
        )))
        .unwrap();
    let r = h
        .api
        .handle_as(
            req,
            kubesigner::api::hooks::AuthnResult::Rejected(kubesigner::authn::AuthnFailure::Expired),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        body["message"], "Unauthorized",
        "no hint which credential failed"
    );
    assert_eq!(h.api.store().resource_version().unwrap(), 0);
}

#[tokio::test]
async fn huge_watch_timeout_is_capped_and_watch_count_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let key = SoftKey::generate();
    let pem = ca_pem(&key);
    let limits = Limits {
        max_watches: 1,
        max_watch_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let h = harness_with(dir.path(), key, pem, IssuanceConfig::default(), limits);
    let req = http::Request::get(format!("{CSRS}?watch=1&timeoutSeconds=999999999999"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = h
        .api
        .handle_as(
            req,
            kubesigner::api::hooks::AuthnResult::Authenticated(admin()),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second = call(
        &h.api,
        &admin(),
        Method::GET,
        &format!("{CSRS}?watch=1"),
        None,
    )
    .await;
    assert_eq!(second.code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers.get("retry-after").unwrap(), "1");
    let start = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "watch not capped: {:?}",
        start.elapsed()
    );
    // The slot is free again once the stream ended.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let req = http::Request::get(format!("{CSRS}?watch=1&timeoutSeconds=1"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(
        h.api
            .handle_as(
                req,
                kubesigner::api::hooks::AuthnResult::Authenticated(admin())
            )
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn signer_rule_violation_is_stored_as_failed_and_unknown_fields_warn() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    // O is not system:nodes: a signer-rule violation → Failed / SignerValidationFailure.
    let bad = csr_json("bad-o", "CN=system:node:n1,O=evil", CLIENT);
    let r = create(&h.api, &bootstrap(&[]), &bad).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    assert_eq!(condition_types(&r.body), vec!["Failed"]);
    assert_eq!(
        r.body["status"]["conditions"][0]["reason"],
        "SignerValidationFailure"
    );
    assert!(!has_certificate(&r.body));
    // An admin approving a Failed CSR never gets it signed.
    let a = decide(&h.api, &admin(), "bad-o", "Approved").await;
    assert!(!has_certificate(&a.body));
    // Warn (the default): accepted with a Warning header naming the field.
    let r = create(
        &h.api,
        &bootstrap(&[]),
        &with(node_csr("warn", "n5"), &["spec", "extraThing"], json!(true)),
    )
    .await;
    assert_eq!(r.code, StatusCode::CREATED);
    let w = r.headers.get("warning").unwrap().to_str().unwrap();
    assert!(w.contains("spec.extraThing"), "{w}");
}

#[tokio::test]
async fn abandoned_watch_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let key = SoftKey::generate();
    let pem = ca_pem(&key);
    let limits = Limits {
        max_watches: 1,
        ..Limits::default()
    };
    let h = harness_with(dir.path(), key, pem, IssuanceConfig::default(), limits);
    let open = || {
        let req = http::Request::get(format!("{CSRS}?watch=1"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        h.api.handle_as(
            req,
            kubesigner::api::hooks::AuthnResult::Authenticated(admin()),
        )
    };
    let first = open().await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(open().await.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(first);
    let start = Instant::now();
    loop {
        let r = open().await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(2), "slot not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pending_csrs_per_node_are_capped_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    for i in 0..3 {
        let r = create(
            &h.api,
            &kubelet_bootstrap(),
            &node_csr(&format!("cap{i}"), "capped"),
        )
        .await;
        assert_eq!(r.code, StatusCode::CREATED, "{}", r.body);
    }
    let rv = h.api.store().resource_version().unwrap();
    let r = create(&h.api, &kubelet_bootstrap(), &node_csr("cap3", "capped")).await;
    assert_eq!(r.code, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(
        h.api.store().resource_version().unwrap(),
        rv,
        "nothing stored"
    );
    // Administrators are exempt; other nodes are not affected.
    assert_eq!(
        create(&h.api, &admin(), &node_csr("cap-admin", "capped"))
            .await
            .code,
        StatusCode::CREATED
    );
    assert_eq!(
        create(&h.api, &kubelet_bootstrap(), &node_csr("other", "free"))
            .await
            .code,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn node_rate_limits_bootstrap_loops_but_not_self_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    // A node renewing with its own identity: not throttled per node.
    for i in 0..7 {
        let r = create(
            &h.api,
            &node("busy"),
            &node_csr(&format!("renew{i}"), "busy"),
        )
        .await;
        assert_eq!(r.code, StatusCode::CREATED, "{i}: {}", r.body);
    }
    // A bootstrap loop for one node name (auto-approved, so not pending): the node rate stops it.
    let codes: Vec<StatusCode> = {
        let mut v = Vec::new();
        for i in 0..7 {
            let mut who = bootstrap(&[]);
            who.user = format!("system:bootstrap:abc{i:03}");
            v.push(
                create(&h.api, &who, &node_csr(&format!("loop{i}"), "looping"))
                    .await
                    .code,
            );
        }
        v
    };
    assert!(codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
}

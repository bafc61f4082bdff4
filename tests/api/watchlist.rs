//! Watch-list (`sendInitialEvents=true`, the default of client-go ≥ 1.35, reference §4.3): the
//! current objects as ADDED, then a BOOKMARK annotated `k8s.io/initial-events-end`, then changes;
//! malformed watch-list requests are a 400 Status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::api_support;

use api_support::*;
use http::StatusCode;

async fn open(h: &Harness, query: &str) -> (StatusCode, kubesigner::api::body::ResponseBody) {
    open_watch(h, &admin(), query).await
}

#[tokio::test]
async fn send_initial_events_then_the_end_bookmark_then_changes() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    create(&h.api, &kubelet_bootstrap(), &node_csr("wl1", "n1")).await;
    create(&h.api, &kubelet_bootstrap(), &node_csr("wl2", "n2")).await;
    let (code, mut body) = open(
        &h,
        "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=30",
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let mut buf = String::new();
    let mut added = Vec::new();
    let end = loop {
        let ev = next_event(&mut body, &mut buf).await.expect("event");
        match ev["type"].as_str().unwrap() {
            "ADDED" => added.push(
                ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            "BOOKMARK" => break ev,
            other => panic!("unexpected {other} before the end bookmark"),
        }
    };
    added.sort();
    assert_eq!(added, ["wl1", "wl2"]);
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let rv: u64 = end["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > 0);
    // Then changes.
    create(&h.api, &kubelet_bootstrap(), &node_csr("wl3", "n3")).await;
    let ev = loop {
        let ev = next_event(&mut body, &mut buf).await.expect("change");
        if ev["type"] != "BOOKMARK" {
            break ev;
        }
    };
    assert_eq!(ev["object"]["metadata"]["name"], "wl3");
    assert!(ev["type"] == "ADDED" || ev["type"] == "MODIFIED");
}

#[tokio::test]
async fn malformed_watch_list_requests_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness(dir.path());
    for q in [
        "sendInitialEvents=true&allowWatchBookmarks=true",
        "sendInitialEvents=true&resourceVersionMatch=Exact&allowWatchBookmarks=true",
        "sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
    ] {
        let (code, _) = open(&h, q).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{q}");
    }
    // A plain watch still carries no end mark on its first bookmark.
    let (code, mut body) = open(&h, "allowWatchBookmarks=true&timeoutSeconds=5").await;
    assert_eq!(code, StatusCode::OK);
    let mut buf = String::new();
    let ev = next_event(&mut body, &mut buf).await.unwrap();
    assert_eq!(ev["type"], "BOOKMARK");
    assert!(ev["object"]["metadata"].get("annotations").is_none());
}

//! Restart and durability: everything acknowledged survives a restart — in process (drop and
//! reopen) and with `kill -9` of a server process in the middle of a stream of writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::api_support;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_support::*;
use http::Method;
use kubesigner::api::Limits;
use kubesigner::app::serve::Server;
use kubesigner::config::{Config, IssuanceConfig};
use serde_json::json;

#[tokio::test]
async fn create_approve_issue_stop_start_everything_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let key = SoftKey::generate();
    let pem = ca_pem(&key);
    let (before, rv_before) = {
        let h = harness_with(
            dir.path(),
            key.clone(),
            pem.clone(),
            IssuanceConfig::default(),
            Limits::default(),
        );
        assert!(has_certificate(
            &create(&h.api, &bootstrap(&[]), &node_csr("auto", "n1"))
                .await
                .body
        ));
        create(&h.api, &kubelet_bootstrap(), &node_csr("manual", "n2")).await;
        assert!(has_certificate(
            &decide(&h.api, &admin(), "manual", "Approved").await.body
        ));
        create(&h.api, &kubelet_bootstrap(), &node_csr("denied", "n3")).await;
        decide(&h.api, &admin(), "denied", "Denied").await;
        let mut l = node_csr("labelled", "n4");
        l["metadata"]["labels"] = json!({"a": "b"});
        create(&h.api, &kubelet_bootstrap(), &l).await;
        h.api.store().set_node_disabled("n5", true).unwrap();
        let list = call(&h.api, &admin(), Method::GET, CSRS, None).await.body;
        (
            list["items"].clone(),
            h.api.store().resource_version().unwrap(),
        )
    };
    let h = harness_with(
        dir.path(),
        key,
        pem,
        IssuanceConfig::default(),
        Limits::default(),
    );
    let after = call(&h.api, &admin(), Method::GET, CSRS, None).await.body;
    assert_eq!(
        after["items"], before,
        "objects, conditions and certificates survive"
    );
    assert_eq!(h.api.store().resource_version().unwrap(), rv_before);
    // Node state and issued-certificate records survive: n5 is still disabled, n1 still has a
    // live certificate (a second bootstrap waits for an admin).
    let d = create(&h.api, &bootstrap(&[]), &node_csr("n5-again", "n5")).await;
    assert_eq!(condition_types(&d.body), vec!["Denied"]);
    let p = create(&h.api, &bootstrap(&[]), &node_csr("n1-again", "n1")).await;
    assert!(condition_types(&p.body).is_empty());
    let rv: u64 = p.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv > rv_before, "resourceVersions keep growing");
}

const ADMIN_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The server process for the kill -9 test: runs only when the parent sets the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_server() {
    let Ok(dir) = std::env::var("KUBESIGNER_TEST_CHILD_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let key = SoftKey::from_pkcs8(&std::fs::read(dir.join("ca.pk8")).unwrap());
    let cfg = Config::load(&dir.join("kubesigner.toml")).unwrap();
    let server = Server::start_with_key(&cfg, key, Arc::new(|| true))
        .await
        .unwrap();
    std::fs::write(dir.join("port.tmp"), server.local_addr().port().to_string()).unwrap();
    std::fs::rename(dir.join("port.tmp"), dir.join("port")).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
}

// The caller kills and waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn spawn_child(dir: &Path) -> (Child, u16) {
    let _ = std::fs::remove_file(dir.join("port"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &crate::support::tools::libtest_name(module_path!(), "child_server"),
            "--nocapture",
        ])
        .env("KUBESIGNER_TEST_CHILD_DIR", dir)
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
            return (child, p.trim().parse().unwrap());
        }
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("child did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    if std::env::var("KUBESIGNER_TEST_CHILD_DIR").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pkcs8 = SoftKey::new_pkcs8();
    std::fs::write(d.join("ca.pk8"), &pkcs8).unwrap();
    std::fs::write(d.join("ca.pem"), ca_pem(&SoftKey::from_pkcs8(&pkcs8))).unwrap();
    std::fs::write(
        d.join("tokens.csv"),
        format!("{ADMIN_TOKEN},admin,1,\"system:masters\"\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("kubesigner.toml"),
        format!(
            "data_dir = {:?}\n[signer]\nkey = \"pkcs11:token=unused;object=unused\"\n[ca]\ncert_file = {:?}\n[auth]\ntoken_auth_file = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n",
            d.join("data"), d.join("ca.pem"), d.join("tokens.csv")
        ),
    )
    .unwrap();
    let ca = d.join("ca.pem");
    let (mut child, port) = spawn_child(d);
    let mut acknowledged = Vec::new();
    let mut approved = Vec::new();
    for i in 0..20 {
        let name = format!("k{i:02}");
        let (code, body) = https_request(
            port,
            &ca,
            ADMIN_TOKEN,
            "POST",
            CSRS,
            Some(&node_csr(&name, &format!("n{i}"))),
        );
        assert_eq!(code, 201, "{body}");
        acknowledged.push(name.clone());
        if i % 4 == 0 {
            let mut obj = body;
            obj["status"]["conditions"] =
                json!([{"type": "Approved", "status": "True", "reason": "Test"}]);
            let (code, b) = https_request(
                port,
                &ca,
                ADMIN_TOKEN,
                "PUT",
                &format!("{CSRS}/{name}/approval"),
                Some(&obj),
            );
            assert_eq!(code, 200, "{b}");
            assert!(has_certificate(&b));
            approved.push(name);
        }
    }
    // kill -9 right after the last acknowledgement.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, port) = spawn_child(d);
    let (code, list) = https_request(port, &ca, ADMIN_TOKEN, "GET", CSRS, None);
    assert_eq!(code, 200);
    let items = list["items"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        acknowledged.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for i in items {
        let name = i["metadata"]["name"].as_str().unwrap().to_owned();
        assert_eq!(has_certificate(i), approved.contains(&name), "{name}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

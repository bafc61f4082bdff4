//! A burst of bootstrap CSRs created at once through kube-rs: the controller handles them
//! concurrently, signs each exactly once (the cluster's `certificate_written` audit records),
//! and still handles one CSR per node at a time, so of two CSRs racing for the same node only
//! one is approved (the other waits: that node has a live certificate by then).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use crate::support::controller;

use std::time::{Duration, Instant};

use appliance::*;
use controller::*;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, ListParams, PostParams};

/// Distinct nodes in the burst.
const NODES: usize = 60;
/// Nodes that get a second, racing CSR.
const TWICE: usize = 5;

fn signed(c: &CertificateSigningRequest) -> bool {
    c.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_signed_once_each_and_one_csr_per_node_wins() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let a = tokio::task::spawn_blocking(start_cluster).await.unwrap();
    let mut r = Replica::new(&a, "replica-a", &ReplicaOptions::default());
    r.start();
    let a_ref = &a;
    wait_for(Duration::from_secs(30), "a lease holder", || {
        lease_holder(a_ref)
    });
    let mut objects = Vec::new();
    for i in 0..NODES {
        let subject = format!("/O=system:nodes/CN=system:node:burst-{i}");
        let (_k, pem) = openssl_csr(a.dir.path(), &format!("b{i}"), &subject, None);
        objects.push(kubelet_client_csr(&format!("burst-{i}"), pem));
        if i < TWICE {
            let (_k, pem) = openssl_csr(a.dir.path(), &format!("t{i}"), &subject, None);
            objects.push(kubelet_client_csr(&format!("twice-{i}"), pem));
        }
    }
    let api: Api<CertificateSigningRequest> =
        Api::all(kube_client(&a.bootstrap_kubeconfig()).await);
    let admin: Api<CertificateSigningRequest> = Api::all(kube_client(&a.admin_kubeconfig()).await);
    let t0 = Instant::now();
    let creates: Vec<_> = objects
        .into_iter()
        .map(|o| {
            let api = api.clone();
            tokio::spawn(async move { api.create(&PostParams::default(), &o).await.unwrap() })
        })
        .collect();
    for c in creates {
        c.await.unwrap();
    }
    let list = loop {
        let l = admin.list(&ListParams::default()).await.unwrap();
        if l.items.iter().filter(|c| signed(c)).count() >= NODES {
            break l;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "burst not signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = t0.elapsed();
    eprintln!(
        "{} CSRs for {NODES} nodes: {NODES} signed after {took:?} ({:.1}/s)",
        NODES + TWICE,
        NODES as f64 / took.as_secs_f64()
    );
    // Give the racing second CSRs time to be (wrongly) approved, then check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let list2 = admin.list(&ListParams::default()).await.unwrap();
    let by_name = |n: &str| {
        list2
            .items
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(n))
    };
    for i in 0..TWICE {
        let first = signed(by_name(&format!("burst-{i}")).unwrap());
        let second = signed(by_name(&format!("twice-{i}")).unwrap());
        assert!(first ^ second, "node burst-{i}: exactly one certificate");
    }
    assert_eq!(list2.items.iter().filter(|c| signed(c)).count(), NODES);
    drop(list);
    let config = a.state().join("kubesigner.toml");
    let written = tokio::task::spawn_blocking(move || {
        audit_pairs(&config)
            .into_iter()
            .filter(|(k, _)| k == "certificate_written")
            .count()
    })
    .await
    .unwrap();
    assert_eq!(written, NODES);
}

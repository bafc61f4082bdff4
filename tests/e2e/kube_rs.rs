//! The kube-rs client (the reference caller of `patch_approval` / `patch_status`) against
//! `kubesigner dev` over HTTPS: create, `patch_approval` (merge patch), and a watcher that uses
//! watch-list with initial events (`sendInitialEvents=true`), seeing the certificate arrive.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;
use crate::support::controller::kube_client;

use std::time::Duration;

use appliance::*;
use futures_util::StreamExt;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_creates_patches_approval_and_watches_with_initial_events() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let a = tokio::task::spawn_blocking(Appliance::start).await.unwrap();
    let (_k, pem) = openssl_csr(
        a.dir.path(),
        "kr",
        "/O=system:nodes/CN=system:node:kr1",
        Some("DNS:kr1.example.com"),
    );
    let api: Api<CertificateSigningRequest> = Api::all(kube_client(&a.admin_kubeconfig()).await);
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some("kube-rs-1".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: k8s_openapi::ByteString(pem.into_bytes()),
            signer_name: "kubernetes.io/kubelet-serving".into(),
            usages: Some(vec!["digital signature".into(), "server auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    let created = api.create(&PostParams::default(), &csr).await.unwrap();
    assert!(created.metadata.uid.is_some());

    // A watcher using watch-list (sendInitialEvents) sees the CSR, then its certificate.
    let wcfg = watcher::Config::default()
        .fields("metadata.name=kube-rs-1")
        .streaming_lists();
    let watch_api = api.clone();
    let seen = tokio::spawn(async move {
        let mut stream = watcher(watch_api, wcfg).boxed();
        let mut initial = false;
        while let Some(ev) = stream.next().await {
            match ev.unwrap() {
                watcher::Event::InitDone => initial = true,
                watcher::Event::Apply(o) | watcher::Event::InitApply(o)
                    if o.status
                        .as_ref()
                        .and_then(|s| s.certificate.as_ref())
                        .is_some() =>
                {
                    return initial;
                }
                _ => {}
            }
        }
        false
    });

    tokio::time::sleep(Duration::from_millis(500)).await;
    let approval = CertificateSigningRequest {
        status: Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some("KubeRsApprove".into()),
                message: Some("approved by kube-rs patch_approval".into()),
                ..Default::default()
            }]),
            certificate: None,
        }),
        ..Default::default()
    };
    let patched = api
        .patch_approval(
            "kube-rs-1",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": approval.status})),
        )
        .await
        .unwrap();
    let types: Vec<_> = patched
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert!(types.contains(&"Approved".to_owned()), "{types:?}");
    let initial_done = tokio::time::timeout(Duration::from_secs(30), seen)
        .await
        .expect("watcher saw the certificate")
        .unwrap();
    assert!(
        initial_done,
        "the watcher finished its initial events first"
    );
    // patch_status by an admin is refused: only the appliance's signer writes certificates.
    let err = api
        .patch_status(
            "kube-rs-1",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"certificate": "AAAA"}})),
        )
        .await
        .unwrap_err();
    assert!(
        format!("{err}").contains("403") || format!("{err:?}").contains("Forbidden"),
        "{err:?}"
    );
}

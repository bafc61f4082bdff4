//! External-signing mode (issue 10 item 5) through kube-rs, as `kubesigner controller` will use
//! it: `kubesigner dev --external-signing --rbac-manifest deploy/rbac.yaml`, the controller's
//! ServiceAccount user from `controller.kubeconfig`. CSRs stay pending (even from an
//! auto-approved bootstrap group); the controller approves through `/approval` and writes the
//! certificate through `/status` with the apiserver's rules (once, Approved only, PEM only,
//! resourceVersion conflicts); each write is one `certificate_written` audit record with the
//! serial and SHA-256; Leases conflict on stale resourceVersions and keep MicroTime exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;
use crate::support::controller::kube_client;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use appliance::*;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

const RBAC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml");
const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

fn controller_kubeconfig(a: &Appliance) -> std::path::PathBuf {
    a.state().join("controller.kubeconfig")
}

/// Creates a kubelet client CSR with the bootstrap token (an auto-approve group in normal mode).
fn bootstrap_csr(a: &Appliance, name: &str, node: &str) {
    let (_k, pem) = openssl_csr(
        a.dir.path(),
        name,
        &format!("/O=system:nodes/CN=system:node:{node}"),
        None,
    );
    let manifest = a.dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &manifest,
        csr_manifest(
            name,
            &pem,
            CLIENT_SIGNER,
            &["digital signature", "client auth"],
        ),
    )
    .unwrap();
    kubectl_ok(
        &a.bootstrap_kubeconfig(),
        &["create", "-f", manifest.to_str().unwrap()],
    );
}

/// A self-signed certificate (PEM) made by openssl; the server checks form, not issuer.
fn some_certificate(dir: &Path, name: &str) -> String {
    let out = dir.join(format!("{name}.crt"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}")])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success());
    std::fs::read_to_string(out).unwrap()
}

fn openssl_field(cert: &str, dir: &Path, args: &[&str]) -> String {
    let f = dir.join("probe.crt");
    std::fs::write(&f, cert).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-in"])
        .arg(&f)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn api_code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("not an API error: {other}"),
    }
}

fn with_certificate(csr: &CertificateSigningRequest, pem: &str) -> CertificateSigningRequest {
    let mut c = csr.clone();
    c.status.get_or_insert_with(Default::default).certificate =
        Some(k8s_openapi::ByteString(pem.as_bytes().to_vec()));
    c
}

fn audit_export(a: &Appliance) -> Vec<serde_json::Value> {
    let out = Command::new(bin())
        .args(["audit", "export", "--config"])
        .arg(a.state().join("kubesigner.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn approve_patch() -> serde_json::Value {
    json!({"status": {"conditions": [{"type": "Approved", "status": "True",
        "reason": "KubesignerController", "message": "approved by the controller"}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_external_controller_approves_and_writes_the_certificate_once() {
    let a = tokio::task::spawn_blocking(|| {
        Appliance::start_with(&["--external-signing", "--rbac-manifest", RBAC])
    })
    .await
    .unwrap();
    let dir = a.dir.path().to_owned();
    bootstrap_csr(&a, "ext-1", "ext1");
    bootstrap_csr(&a, "ext-2", "ext2");
    // Stays pending although the bootstrap group is auto-approved in normal mode.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let csrs: Api<CertificateSigningRequest> =
        Api::all(kube_client(&controller_kubeconfig(&a)).await);
    let listed = csrs.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 2, "the controller lists every CSR");
    for c in &listed.items {
        let conditions = c.status.as_ref().and_then(|s| s.conditions.as_ref());
        assert!(conditions.is_none_or(|c| c.is_empty()), "{c:?}");
        assert!(
            c.status
                .as_ref()
                .and_then(|s| s.certificate.as_ref())
                .is_none()
        );
    }

    // A certificate on a CSR that is not approved is refused.
    let cert_a = some_certificate(&dir, "cert-a");
    let cert_b = some_certificate(&dir, "cert-b");
    let pending = csrs.get("ext-1").await.unwrap();
    let e = csrs
        .replace_status(
            "ext-1",
            &PostParams::default(),
            &with_certificate(&pending, &cert_a),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(e), (422, "Invalid".to_owned()));

    // Approve through /approval, then write the certificate through /status (PUT with the RV).
    let approved = csrs
        .patch_approval(
            "ext-1",
            &PatchParams::default(),
            &Patch::Merge(&approve_patch()),
        )
        .await
        .unwrap();
    let stale_rv = approved.metadata.resource_version.clone();
    let written = csrs
        .replace_status(
            "ext-1",
            &PostParams::default(),
            &with_certificate(&approved, &cert_a),
        )
        .await
        .unwrap();
    let got = written.status.unwrap().certificate.unwrap();
    assert_eq!(got.0, cert_a.as_bytes());

    // A second, different certificate: stale RV → 409; fresh RV → 422 (immutable).
    let e = csrs
        .replace_status(
            "ext-1",
            &PostParams::default(),
            &with_certificate(&approved, &cert_b),
        )
        .await
        .unwrap_err();
    assert_eq!(
        api_code(e),
        (409, "Conflict".to_owned()),
        "stale {stale_rv:?}"
    );
    let fresh = csrs.get("ext-1").await.unwrap();
    let e = csrs
        .replace_status(
            "ext-1",
            &PostParams::default(),
            &with_certificate(&fresh, &cert_b),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(e), (422, "Invalid".to_owned()));
    // ... and through a merge patch (no RV) as well.
    let b64 = base64_of(&cert_b);
    let e = csrs
        .patch_status(
            "ext-1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"certificate": b64}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(e), (422, "Invalid".to_owned()));

    // Not PEM CERTIFICATE blocks: refused. Then a Failed condition may be written (no sign).
    csrs.patch_approval(
        "ext-2",
        &PatchParams::default(),
        &Patch::Merge(&approve_patch()),
    )
    .await
    .unwrap();
    let e = csrs
        .patch_status(
            "ext-2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"certificate": base64_of("not a certificate")}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(e), (422, "Invalid".to_owned()));
    let failed = csrs
        .patch_status(
            "ext-2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"conditions": [
                {"type": "Approved", "status": "True", "reason": "KubesignerController"},
                {"type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                 "message": "refused by the signer"}]}})),
        )
        .await
        .unwrap();
    let types: Vec<String> = failed
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, ["Failed", "Approved"]);

    // Exactly one certificate_written record, naming the writer, serial and fingerprint.
    let records = audit_export(&a);
    let written: Vec<_> = records
        .iter()
        .filter(|r| r["kind"] == "certificate_written")
        .collect();
    assert_eq!(written.len(), 1, "{records:?}");
    let r = written[0];
    assert_eq!(r["csr_name"], "ext-1");
    assert_eq!(r["actor"], "system:serviceaccount:kubesigner:kubesigner");
    let serial = openssl_field(&cert_a, &dir, &["-serial"]);
    let serial = serial
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let serial_rec = r["certificate_serial"].as_str().unwrap();
    assert_eq!(
        serial_rec.trim_start_matches("00"),
        serial.trim_start_matches("00")
    );
    let fp = openssl_field(&cert_a, &dir, &["-fingerprint", "-sha256"]);
    let fp: String = fp
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_ascii_lowercase();
    assert_eq!(r["certificate_sha256"], fp.as_str());
    assert!(
        records.iter().all(|r| r["kind"] != "issue"),
        "the appliance never signs in external mode"
    );
    let table = kubectl_ok(&a.admin_kubeconfig(), &["get", "csr", "ext-1"]);
    assert!(table.contains("Approved,Issued"), "{table}");
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn micro(s: &str) -> MicroTime {
    serde_json::from_value(json!(s)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_external_leases_conflict_and_keep_microtime() {
    let a = tokio::task::spawn_blocking(|| {
        Appliance::start_with(&["--external-signing", "--rbac-manifest", RBAC])
    })
    .await
    .unwrap();
    let leases: Api<Lease> =
        Api::namespaced(kube_client(&controller_kubeconfig(&a)).await, "kube-system");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("kubesigner-controller".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("replica-a".into()),
            lease_duration_seconds: Some(3),
            acquire_time: Some(micro("2026-11-25T18:00:00.123456Z")),
            renew_time: Some(micro("2026-11-25T18:00:01.000001Z")),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    let e = leases
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_err();
    assert_eq!(api_code(e), (409, "AlreadyExists".to_owned()));

    // MicroTime exactly as sent, in the raw JSON too.
    let raw = kubectl_ok(
        &a.admin_kubeconfig(),
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            "kubesigner-controller",
            "-o",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["spec"]["acquireTime"], "2026-11-25T18:00:00.123456Z");
    assert_eq!(v["spec"]["renewTime"], "2026-11-25T18:00:01.000001Z");

    // Conditional replace: the current RV wins once; the same (now stale) RV is a 409.
    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().renew_time = Some(micro("2026-11-25T18:00:02.500000Z"));
    let r2 = leases
        .replace("kubesigner-controller", &PostParams::default(), &renewed)
        .await
        .unwrap();
    let rv2 = r2.metadata.resource_version.clone().unwrap();
    assert_ne!(rv1, rv2);
    let mut other = created.clone();
    other.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    let e = leases
        .replace("kubesigner-controller", &PostParams::default(), &other)
        .await
        .unwrap_err();
    assert_eq!(api_code(e), (409, "Conflict".to_owned()));
    let now = leases.get("kubesigner-controller").await.unwrap();
    assert_eq!(
        now.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("replica-a")
    );
    assert_eq!(
        serde_json::to_value(&now.spec.as_ref().unwrap().renew_time).unwrap(),
        "2026-11-25T18:00:02.500000Z"
    );

    // Merge patch with an RV precondition, and a JSON patch with a test.
    let stale =
        json!({"metadata": {"resourceVersion": rv1}, "spec": {"holderIdentity": "replica-b"}});
    let e = leases
        .patch(
            "kubesigner-controller",
            &PatchParams::default(),
            &Patch::Merge(&stale),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(e), (409, "Conflict".to_owned()));
    let p = json!({"spec": {"holderIdentity": "replica-b", "leaseTransitions": 1}});
    let patched = leases
        .patch(
            "kubesigner-controller",
            &PatchParams::default(),
            &Patch::Merge(&p),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.as_ref().unwrap().lease_transitions, Some(1));
    // JSON patch (kubectl --type=json, the admin): a failing test op is 422, then a good one.
    let args = |ops: &str| {
        kubectl(
            &a.admin_kubeconfig(),
            &[
                "patch",
                "lease",
                "-n",
                "kube-system",
                "kubesigner-controller",
                "--type=json",
                "-p",
                ops,
            ],
        )
    };
    let out = args(
        r#"[{"op":"test","path":"/spec/holderIdentity","value":"replica-a"},{"op":"replace","path":"/spec/holderIdentity","value":"replica-c"}]"#,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is invalid"),
        "{out:?}"
    );
    let out = args(
        r#"[{"op":"test","path":"/spec/holderIdentity","value":"replica-b"},{"op":"replace","path":"/spec/holderIdentity","value":"replica-c"}]"#,
    );
    assert!(out.status.success(), "{out:?}");
    let now = leases.get("kubesigner-controller").await.unwrap();
    assert_eq!(
        now.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("replica-c")
    );

    // Eight replicas renew from the same read at once: exactly one wins, seven get 409.
    let base = leases.get("kubesigner-controller").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (leases, mut mine) = (leases.clone(), base.clone());
        mine.spec.as_mut().unwrap().holder_identity = Some(format!("racer-{i}"));
        tasks.push(tokio::spawn(async move {
            leases
                .replace("kubesigner-controller", &PostParams::default(), &mine)
                .await
        }));
    }
    let mut wins = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(l) => wins.push(l.spec.unwrap().holder_identity.unwrap()),
            Err(e) => assert_eq!(api_code(e), (409, "Conflict".to_owned())),
        }
    }
    assert_eq!(wins.len(), 1, "{wins:?}");
    let now = leases.get("kubesigner-controller").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_ref(), wins.first());

    // The Role names one lease: another name is forbidden for the controller.
    let e = leases.get("someone-else").await.unwrap_err();
    assert_eq!(api_code(e).0, 403);
    // kubectl (admin) lists them with the holder column.
    let table = kubectl_ok(
        &a.admin_kubeconfig(),
        &["get", "leases", "-n", "kube-system"],
    );
    assert!(
        table.contains("kubesigner-controller") && table.contains("racer-"),
        "{table}"
    );
}

/// A watch from a resourceVersion the server no longer has (here: from before a restart, which
/// empties the event window) reaches kube-rs as kube-apiserver sends it: the stream opens and
/// its one event is an ERROR with a 410 Expired Status, on which kube-rs's `watcher` lists
/// again. An HTTP 410 answer instead made the watcher retry the same version forever (seen as
/// a controller stuck on "too old resource version" in a loaded active-active storm).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_a_watch_from_an_expired_version_ends_with_an_error_event_410() {
    use futures_util::TryStreamExt;
    use kube::api::WatchParams;
    use kube::core::WatchEvent;
    use kube::runtime::watcher;

    let mut a = Appliance::start();
    tokio::task::block_in_place(|| {
        bootstrap_csr(&a, "exp-1", "exp-node-1");
        bootstrap_csr(&a, "exp-2", "exp-node-2");
        a.restart();
    });
    let csrs: Api<CertificateSigningRequest> = Api::all(kube_client(&a.admin_kubeconfig()).await);
    let stream = csrs
        .watch(&WatchParams::default().timeout(5), "1")
        .await
        .expect("the watch opens");
    futures_util::pin_mut!(stream);
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!(status.code, 410, "{status:?}");
            assert_eq!(status.reason, "Expired", "{status:?}");
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the stream ends"
    );

    // The watcher as the controller runs it: a list, then the two CSRs, then changes.
    let events = watcher(csrs, watcher::Config::default());
    futures_util::pin_mut!(events);
    let mut names = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), events.try_next())
        .await
        .expect("an event within 10 s")
        .unwrap()
    {
        match ev {
            watcher::Event::InitApply(o) => names.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    names.sort();
    assert_eq!(names, ["exp-1", "exp-2"]);
}

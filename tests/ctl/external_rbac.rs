//! External-signing mode's authorization (issue 10 "What it must show": the RBAC manifest
//! applied against the external-signing `serve`, errors as a cluster shows them): the
//! controller's ServiceAccount user gets 403s without a manifest granting it; the CSR
//! admission checks need `approve` / `sign` on `certificates.k8s.io` `signers` (by name or
//! `<domain>/*`); an invalid manifest stops start-up with exit 64.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use appliance::*;

const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

fn controller(a: &Appliance) -> std::path::PathBuf {
    a.state().join("controller.kubeconfig")
}

fn bootstrap_csr(a: &Appliance, name: &str) {
    let (_k, pem) = openssl_csr(
        a.dir.path(),
        name,
        &format!("/O=system:nodes/CN=system:node:{name}"),
        None,
    );
    let manifest = a.dir.path().join(format!("{name}.yaml"));
    let text = csr_manifest(
        name,
        &pem,
        CLIENT_SIGNER,
        &["digital signature", "client auth"],
    );
    std::fs::write(&manifest, text).unwrap();
    kubectl_ok(
        &a.bootstrap_kubeconfig(),
        &["create", "-f", manifest.to_str().unwrap()],
    );
}

fn stderr_of(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// PUTs a certificate into the CSR's status as the controller; kubectl's error output.
fn put_certificate(a: &Appliance, name: &str) -> String {
    let cert = a.dir.path().join("c.crt");
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=c",
        ])
        .arg("-keyout")
        .arg(a.dir.path().join("c.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(st.status.success());
    let json = kubectl_ok(&a.admin_kubeconfig(), &["get", "csr", name, "-o", "json"]);
    let mut obj: serde_json::Value = serde_json::from_str(&json).unwrap();
    use base64::Engine;
    obj["status"]["certificate"] = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(&cert).unwrap())
        .into();
    let body = a.dir.path().join("body.json");
    std::fs::write(&body, obj.to_string()).unwrap();
    // As the controller, with kubectl (client-go): a refusal sent before the body is read
    // ends the HTTP/2 stream with RST_STREAM(NO_ERROR) after the response, which client-go
    // accepts (RFC 9113 8.1) and some curl builds report as a framing error.
    let path = format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/status");
    stderr_of(
        &controller(a),
        &["replace", "--raw", &path, "-f", body.to_str().unwrap()],
    )
}

#[test]
fn ctl_external_controller_without_rbac_is_forbidden() {
    let a = Appliance::start_with(&["--external-signing"]);
    bootstrap_csr(&a, "norbac-1");
    let ctl = controller(&a);
    let e = stderr_of(&ctl, &["get", "csr"]);
    assert!(e.contains("Forbidden"), "{e}");
    let e = stderr_of(&ctl, &["certificate", "approve", "norbac-1"]);
    assert!(e.contains("Forbidden"), "{e}");
    let e = stderr_of(
        &ctl,
        &["get", "lease", "-n", "kube-system", "kubesigner-controller"],
    );
    assert!(
        e.contains("cannot get resource \"leases\" in API group \"coordination.k8s.io\""),
        "{e}"
    );
    // The admin approves; the appliance still never signs.
    kubectl_ok(
        &a.admin_kubeconfig(),
        &["certificate", "approve", "norbac-1"],
    );
    // Negative check: a bounded wait on purpose (nothing may happen in it); it fails as soon as
    // the CSR is issued.
    assert!(!tools::poll(Duration::from_secs(2), || {
        kubectl_ok(&a.admin_kubeconfig(), &["get", "csr", "norbac-1"]).contains("Issued")
    }));
    let table = kubectl_ok(&a.admin_kubeconfig(), &["get", "csr", "norbac-1"]);
    assert!(
        table.contains("Approved") && !table.contains("Issued"),
        "{table}"
    );
    let e = put_certificate(&a, "norbac-1");
    assert!(e.contains("Error from server (Forbidden)"), "{e}");
    // The admin (kubectl get leases) works in every mode.
    let out = kubectl_ok(
        &a.admin_kubeconfig(),
        &["get", "leases", "-n", "kube-system"],
    );
    assert!(out.is_empty() || out.contains("NAME"), "{out}");
}

/// Everything the controller needs except `sign` on the client signer; `approve` through the
/// `kubernetes.io/*` wildcard.
const PARTIAL: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: partial}
rules:
  - apiGroups: ["certificates.k8s.io"]
    resources: ["certificatesigningrequests"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["certificates.k8s.io"]
    resources: ["certificatesigningrequests/approval", "certificatesigningrequests/status"]
    verbs: ["update", "patch"]
  - apiGroups: ["certificates.k8s.io"]
    resources: ["signers"]
    resourceNames: ["kubernetes.io/*"]
    verbs: ["approve"]
  - apiGroups: ["certificates.k8s.io"]
    resources: ["signers"]
    resourceNames: ["kubernetes.io/kubelet-serving"]
    verbs: ["sign"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: partial}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: partial}
subjects:
  - {kind: Group, name: "system:serviceaccounts:kubesigner", apiGroup: rbac.authorization.k8s.io}
"#;

#[test]
fn ctl_external_signer_admission_needs_approve_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("partial.yaml");
    std::fs::write(&manifest, PARTIAL).unwrap();
    let a = Appliance::start_with(&[
        "--external-signing",
        "--rbac-manifest",
        manifest.to_str().unwrap(),
    ]);
    bootstrap_csr(&a, "partial-1");
    let ctl = controller(&a);
    let list = kubectl_ok(&ctl, &["get", "csr"]);
    assert!(list.contains("partial-1"), "{list}");
    kubectl_ok(&ctl, &["certificate", "approve", "partial-1"]);
    let e = put_certificate(&a, "partial-1");
    assert!(e.contains("Error from server (Forbidden)"), "{e}");
    assert!(
        e.contains("not permitted to sign requests with signerName"),
        "{e}"
    );
    assert!(a.log().contains("csr admission refused"), "logged");
}

#[test]
fn ctl_external_invalid_rbac_manifest_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    // A rule without verbs is invalid (kube-apiserver refuses it too).
    std::fs::write(
        &bad,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n\
         rules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(bin())
        .arg("dev")
        .arg("--dir")
        .arg(dir.path().join("state"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--external-signing", "--rbac-manifest"])
        .arg(&bad)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("verbs"), "{text}");
}

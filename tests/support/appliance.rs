//! Shared end-to-end harness: a `kubesigner dev` appliance in a fresh directory (its own SoftHSM
//! token, CA, admin and bootstrap kubeconfigs), stopped when the handle drops; and helpers that
//! run the real `kubectl`, `openssl` and `pkilint`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub use super::tools;

pub use tools::{bin, free_port};

/// The one setup step every launcher shares: `kubesigner dev --setup-only --dir STATE --listen
/// ADDR [extra]` (a fresh SoftHSM token, CA, bootstrap token, kubeconfigs and
/// `STATE/kubesigner.toml`); fails the test with dev's stderr when it fails.
pub fn dev_setup(state: &Path, addr: &str, extra: &[&str]) {
    let out = Command::new(bin())
        .args(["dev", "--setup-only", "--dir"])
        .arg(state)
        .args(["--listen", addr])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends `toml` to the configuration file at `config`.
pub fn append_config(config: &Path, toml: &str) {
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push('\n');
    text.push_str(toml);
    std::fs::write(config, text).unwrap();
}

/// A running `kubesigner dev` appliance.
pub struct Appliance {
    pub dir: tempfile::TempDir,
    pub addr: String,
    child: Option<Child>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    /// Set up by `dev --setup-only`, then run by `serve --config` with this TOML appended.
    served_with: Option<String>,
}

impl Appliance {
    /// Sets up and starts `kubesigner dev` in a fresh directory; waits for `/readyz`.
    pub fn start() -> Appliance {
        Self::start_with(&[])
    }

    /// As [`Appliance::start`], with extra `dev` arguments.
    pub fn start_with(extra: &[&str]) -> Appliance {
        Self::start_with_env(extra, &[])
    }

    /// As [`Appliance::start_with`], with extra environment (e.g. `KUBESIGNER_LOG`).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Appliance {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut a = Appliance {
            dir,
            addr,
            child: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            served_with: None,
        };
        a.spawn();
        a
    }

    /// The dev appliance's setup (`dev --setup-only`), then `serve --config` on its
    /// configuration with `toml` appended (e.g. an `[issuance]` section): the production
    /// command, with settings `dev` does not take.
    pub fn serve_with_config(toml: &str) -> Appliance {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        dev_setup(&dir.path().join("state"), &addr, &[]);
        append_config(&dir.path().join("state").join("kubesigner.toml"), toml);
        let mut a = Appliance {
            dir,
            addr,
            child: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            served_with: Some(toml.to_owned()),
        };
        a.spawn();
        a
    }

    /// The configuration file the appliance runs.
    pub fn config(&self) -> PathBuf {
        self.state().join("kubesigner.toml")
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("appliance.log")).unwrap();
        let mut cmd = Command::new(bin());
        if self.served_with.is_some() {
            cmd.arg("serve")
                .arg("--config")
                .arg(self.config())
                .arg("--allow-root");
        } else {
            cmd.arg("dev")
                .arg("--dir")
                .arg(self.dir.path().join("state"))
                .arg("--listen")
                .arg(&self.addr)
                .args(&self.extra_args);
        }
        let child = cmd
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    /// The appliance's state directory (the `dev --dir`).
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.state().join("admin.kubeconfig")
    }

    pub fn bootstrap_kubeconfig(&self) -> PathBuf {
        self.state().join("bootstrap.kubeconfig")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("appliance.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let ready = tools::poll(Duration::from_secs(60), || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("appliance exited with {status}:\n{}", self.log());
            }
            self.admin_kubeconfig().exists()
                && kubectl(&self.admin_kubeconfig(), &["get", "--raw", "/readyz"])
                    .status
                    .success()
        });
        assert!(ready, "appliance not ready after 60 s:\n{}", self.log());
    }

    /// Stops the appliance (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        tools::stop(&mut self.child, Duration::from_secs(10));
    }

    /// Stops and starts the appliance again on the same directory and address.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        tools::kill(&mut self.child);
    }
}

/// Runs the real kubectl with the given kubeconfig (in `KUBECONFIG`, as an operator would).
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    tools::kubectl(tools::Via::Env, kubeconfig, args)
}

/// kubectl that must succeed; returns stdout.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    tools::kubectl_ok(tools::Via::Env, kubeconfig, args)
}

/// A fresh P-256 key and a PEM CSR made by openssl for `subject` (e.g.
/// `/O=system:nodes/CN=system:node:node1`), with optional `subjectAltName` (e.g.
/// `DNS:node1,IP:10.0.0.1`). Returns (key PEM path, CSR PEM).
pub fn openssl_csr(dir: &Path, name: &str, subject: &str, san: Option<&str>) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ])
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&csr)
    .args(["-subj", subject]);
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, std::fs::read_to_string(csr).unwrap())
}

/// A CertificateSigningRequest manifest (YAML) for kubectl create -f.
pub fn csr_manifest(name: &str, csr_pem: &str, signer: &str, usages: &[&str]) -> String {
    use base64::Engine;
    let request = base64::engine::general_purpose::STANDARD.encode(csr_pem);
    let usages: String = usages.iter().map(|u| format!("  - {u}\n")).collect();
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\n\
         spec:\n  request: {request}\n  signerName: {signer}\n  usages:\n{usages}"
    )
}

/// Creates a kubelet-serving CSR `name` for `node` (an openssl key and CSR in `dir`) with the
/// admin kubeconfig `admin`.
pub fn create_serving_csr(dir: &Path, admin: &Path, name: &str, node: &str) {
    let (_, pem) = openssl_csr(
        dir,
        name,
        &format!("/O=system:nodes/CN=system:node:{node}"),
        Some(&format!("DNS:{node}.example.com")),
    );
    let usages = ["digital signature", "server auth"];
    let manifest = csr_manifest(name, &pem, "kubernetes.io/kubelet-serving", &usages);
    create_csr_as(dir, admin, name, &manifest);
}

/// `kubectl create -f` of the manifest of CSR `name` (written to `dir`) as the user of
/// `kubeconfig`.
pub fn create_csr_as(dir: &Path, kubeconfig: &Path, name: &str, manifest: &str) {
    let f = dir.join(format!("{name}.yaml"));
    std::fs::write(&f, manifest).unwrap();
    kubectl_ok(kubeconfig, &["create", "-f", f.to_str().unwrap()]);
}

/// Checks a PEM certificate (leaf first) with `openssl verify` against `ca` and with pkilint at
/// WARNING; returns the pkilint findings other than the `allowed` codes (must be empty).
pub fn check_certificate(dir: &Path, cert_pem: &str, ca: &Path, allowed: &[&str]) -> Vec<String> {
    let leaf_end = cert_pem.find("-----END CERTIFICATE-----").unwrap() + 25;
    let leaf = dir.join("leaf.pem");
    std::fs::write(&leaf, &cert_pem[..leaf_end]).unwrap();
    let v = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "openssl verify: {}",
        String::from_utf8_lossy(&v.stdout)
    );
    let lint = Command::new("lint_pkix_cert")
        .args(["lint", "-s", "WARNING"])
        .arg(&leaf)
        .output()
        .expect("pkilint (lint_pkix_cert) must be installed");
    String::from_utf8_lossy(&lint.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !allowed.iter().any(|a| l.contains(a)))
        .map(str::to_owned)
        .collect()
}

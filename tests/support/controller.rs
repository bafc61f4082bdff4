//! Controller-mode harness: a `kubesigner dev --external-signing` cluster stand-in (the RBAC
//! manifest of deploy/ applied) and `kubesigner controller` replicas against it.
//!
//! Every replica gets its OWN copy of the dev SoftHSM token directory (so the same CA key,
//! as in an HSM cluster whose members hold a cloned key) and its own data dir: several
//! processes logging in to one SoftHSM token directory at once fail now and then.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::appliance::*;

/// Lease timing used by the tests (small, to keep failover quick).
pub const LEASE: &str = "3s";
pub const RENEW: &str = "2s";
pub const RETRY: &str = "500ms";
pub const LEASE_DURATION: Duration = Duration::from_secs(3);

pub fn rbac_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac.yaml")
}

/// The cluster stand-in: `dev --external-signing --rbac-manifest deploy/rbac.yaml`.
pub fn start_cluster() -> Appliance {
    let rbac = rbac_manifest();
    Appliance::start_with(&[
        "--external-signing",
        "--rbac-manifest",
        rbac.to_str().unwrap(),
    ])
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// One controller replica's files and process.
pub struct Replica {
    pub dir: PathBuf,
    pub identity: String,
    pub config: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// With `p11`: the p11-kit server holding this replica's token copy, and its socket.
    hsm: Option<Child>,
    socket: Option<PathBuf>,
    module: String,
    token_delay: Option<Duration>,
    relay: Option<super::relay::DelayRelay>,
    proxy: Option<super::relay::StallProxy>,
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// Options of a replica.
pub struct ReplicaOptions<'a> {
    pub approve: bool,
    /// Extra TOML lines for `[controller]`.
    pub controller_extra: &'a str,
    /// Put the token copy behind a `p11-kit server` (the "HSM" can then be killed).
    pub p11: bool,
    /// With `p11`: a delay line in front of the p11-kit server (every client→server chunk
    /// waits this long: a network HSM's round trip).
    pub token_delay: Option<Duration>,
    /// `mode = "active-active"` (member Leases in the `kubesigner` namespace).
    pub active: bool,
    /// Serve `/metrics` on a free local port ([`Replica::metrics`]).
    pub metrics: bool,
    /// Reach the API through a [`StallProxy`] ([`Replica::stall_api`]).
    pub api_proxy: bool,
}

impl Default for ReplicaOptions<'_> {
    fn default() -> Self {
        ReplicaOptions {
            approve: true,
            controller_extra: "",
            p11: false,
            token_delay: None,
            active: false,
            metrics: false,
            api_proxy: false,
        }
    }
}

/// The dev appliance's `[signer] key` URI.
fn dev_key_uri(a: &Appliance) -> String {
    let text = std::fs::read_to_string(a.state().join("kubesigner.toml")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    t["signer"]["key"].as_str().unwrap().to_owned()
}

/// The node inventory the tests use: ctl-node-1..=9 with 10.0.0.<n> and their names.
pub fn write_inventory(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for n in 1..=9 {
        text.push_str(&format!(
            "[nodes.ctl-node-{n}]\naddresses = [\"10.0.0.{n}\"]\ndns_names = [\"ctl-node-{n}\", \"ctl-node-{n}.example.com\"]\n"
        ));
    }
    let p = dir.join("inventory.toml");
    std::fs::write(&p, text).unwrap();
    p
}

impl Replica {
    /// Sets up replica `identity` under the appliance's temp dir (token copy, config).
    pub fn new(a: &Appliance, identity: &str, opts: &ReplicaOptions<'_>) -> Replica {
        let dir = a.dir.path().join(identity);
        std::fs::create_dir_all(&dir).unwrap();
        let tokens = dir.join("tokens");
        copy_dir(&a.state().join("tokens"), &tokens);
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        let inventory = write_inventory(&dir);
        let key = dev_key_uri(a);
        let module = key
            .split("module-path=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        let socket = opts.p11.then(|| dir.join("p11-kit.sock"));
        let (key, env_key, env_value, signer_extra) = match &socket {
            Some(sock) => (
                key.replace(&module, tools::p11_kit_client_module().to_str().unwrap()),
                "P11_KIT_SERVER_ADDRESS",
                format!("unix:path={}", sock.display()),
                // Notice a dead token quickly while idle (a slow one: within its round trips).
                if opts.token_delay.is_some() {
                    "keepalive_interval = \"5s\"\nsign_timeout = \"20s\"\nmax_sessions = 2\n"
                } else {
                    "keepalive_interval = \"300ms\"\nsign_timeout = \"1s\"\n"
                },
            ),
            None => (key, "SOFTHSM2_CONF", conf.to_str().unwrap().to_owned(), ""),
        };
        let esc = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut extra = opts.controller_extra.to_owned();
        if opts.active {
            extra.push_str("\nmode = \"active-active\"\n");
        }
        let metrics_addr = opts.metrics.then(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        });
        if let Some(m) = metrics_addr {
            extra.push_str(&format!("\nmetrics_address = \"{m}\"\n"));
        }
        let proxy = opts
            .api_proxy
            .then(|| super::relay::StallProxy::start(&a.addr.to_string()));
        let mut kubeconfig = a.state().join("controller.kubeconfig");
        if let Some(p) = &proxy {
            let text = std::fs::read_to_string(&kubeconfig).unwrap();
            let from = format!("https://{}", a.addr);
            assert!(text.contains(&from), "kubeconfig server is {from}");
            kubeconfig = dir.join("controller.kubeconfig");
            std::fs::write(
                &kubeconfig,
                text.replace(&from, &format!("https://{}", p.addr)),
            )
            .unwrap();
        }
        let config = dir.join("controller.toml");
        let text = format!(
            "data_dir = {data}\n[signer]\nkey = {key}\n{signer_extra}[signer.environment]\n{env_key} = {env}\n\
             [ca]\ncert_file = {ca}\n[issuance]\nnode_inventory = {inv}\n\
             [controller]\nkubeconfig = {kc}\nlease_duration = \"{LEASE}\"\nrenew_deadline = \"{RENEW}\"\n\
             retry_period = \"{RETRY}\"\nidentity = {id}\napprove = {approve}\n{extra}\n",
            data = esc(dir.join("data").to_str().unwrap()),
            key = esc(&key),
            env = esc(&env_value),
            ca = esc(a.state().join("ca.crt").to_str().unwrap()),
            inv = esc(inventory.to_str().unwrap()),
            kc = esc(kubeconfig.to_str().unwrap()),
            id = esc(identity),
            approve = opts.approve,
        );
        std::fs::write(&config, text).unwrap();
        Replica {
            dir,
            identity: identity.to_owned(),
            config,
            args: Vec::new(),
            child: None,
            hsm: None,
            socket,
            module,
            token_delay: opts.token_delay,
            relay: None,
            proxy,
            metrics_addr,
        }
    }

    /// Stops (true) or resumes (false) this replica's API traffic (needs `api_proxy`).
    pub fn stall_api(&self, on: bool) {
        self.proxy
            .as_ref()
            .expect("replica without api_proxy")
            .stall(on);
    }

    /// This replica's `/metrics` text (needs `metrics`); empty when it does not answer.
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let addr = self.metrics_addr.expect("replica without metrics");
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// One sample's value from [`Replica::metrics`] (`name` with its labels, as exposed).
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Starts the p11-kit server for this replica's token copy (own process group).
    pub fn start_hsm(&mut self) {
        let client_socket = self.socket.clone().expect("replica without p11");
        // With a delay: p11-kit listens on its own socket, the relay on the replica's.
        let socket = match self.token_delay {
            Some(_) => self.dir.join("p11-kit-upstream.sock"),
            None => client_socket.clone(),
        };
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("p11-kit")
            .args(["server", "-f", "-n"])
            .arg(&socket)
            .args(["--provider", &self.module])
            .arg("pkcs11:token=kubesigner-dev")
            .env("SOFTHSM2_CONF", self.dir.join("softhsm2.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "p11-kit server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.hsm = Some(child);
        if let Some(d) = self.token_delay {
            self.relay = Some(super::relay::DelayRelay::start(&client_socket, &socket, d));
        }
    }

    /// Kills the p11-kit server and the processes it forked.
    pub fn kill_hsm(&mut self) {
        if let Some(mut c) = self.hsm.take() {
            Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status()
                .unwrap();
            c.wait().unwrap();
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("controller.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts the process (appending to its log).
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(bin())
            .arg("controller")
            .arg("--config")
            .arg(&self.config)
            .arg("--allow-root")
            .args(&self.args)
            .env("KUBESIGNER_LOG", "info,kubesigner=debug")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal (e.g. `-STOP`, `-CONT`) to the process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(sig)
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for exit (the lease is released).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        tools::stop(&mut self.child, Duration::from_secs(15))
    }

    /// `kubesigner audit export --config` on this replica's local store: (kind, csr) pairs.
    pub fn local_audit(&self) -> Vec<(String, String)> {
        audit_pairs(&self.config)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        tools::kill(&mut self.child);
        if let Some(mut c) = self.hsm.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
    }
}

/// A kube-rs client from a kubeconfig file (the test's admin, bootstrap or controller identity).
pub async fn kube_client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// A kubelet client-certificate CSR object named `name` for the PEM request `pem`.
pub fn kubelet_client_csr(
    name: &str,
    pem: String,
) -> k8s_openapi::api::certificates::v1::CertificateSigningRequest {
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequest, CertificateSigningRequestSpec,
    };
    CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: k8s_openapi::ByteString(pem.into_bytes()),
            signer_name: "kubernetes.io/kube-apiserver-client-kubelet".into(),
            usages: Some(vec!["digital signature".into(), "client auth".into()]),
            ..Default::default()
        },
        status: None,
    }
}

/// Runs an async controller test on a runtime with two workers (as `#[tokio::test(flavor =
/// "multi_thread", worker_threads = 2)]` does), then shuts the runtime down within 10 s. A
/// dropped runtime waits for every blocking task without limit: a storm test once hung after
/// its last assertion until nextest's timeout (CI only, not reproduced in six runs here).
pub fn run_bounded(body: impl std::future::Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(body);
    eprintln!("test body done; shutting the runtime down");
    rt.shutdown_timeout(Duration::from_secs(10));
}

/// `kubesigner audit export --config FILE` as (kind, csr_name) pairs.
pub fn audit_pairs(config: &Path) -> Vec<(String, String)> {
    audit_records(config)
        .into_iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["csr_name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `kubesigner audit export --config FILE` as JSON values.
pub fn audit_records(config: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(bin())
        .args(["audit", "export", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The cluster's audit records of certificates written through `/status`, per CSR name.
pub fn certificates_written(a: &Appliance, csr: &str) -> usize {
    audit_pairs(&a.state().join("kubesigner.toml"))
        .iter()
        .filter(|(k, n)| k == "certificate_written" && n == csr)
        .count()
}

/// The active-active member Leases (namespace `kubesigner`) as (holder, renewTime,
/// leaseDurationSeconds), through admin kubectl.
pub fn member_leases(a: &Appliance) -> Vec<(String, String, u64)> {
    let out = kubectl(
        &a.admin_kubeconfig(),
        &[
            "get",
            "lease",
            "-n",
            "kubesigner",
            "-o",
            "jsonpath={range .items[*]}{.spec.holderIdentity} {.spec.renewTime} {.spec.leaseDurationSeconds}{\"\\n\"}{end}",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                it.next()?.to_owned(),
                it.next()?.to_owned(),
                it.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// The Lease holder as the cluster stores it (admin kubectl), if any.
pub fn lease_holder(a: &Appliance) -> Option<String> {
    let out = kubectl(
        &a.admin_kubeconfig(),
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            "kubesigner-controller",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    );
    let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Waits until `f` returns Some, or panics after `limit` with `what` ([`tools::wait_for_some`]).
pub fn wait_for<T>(limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    tools::wait_for_some(what, limit, f)
}

/// Creates a kubelet client CSR for `node` with the bootstrap kubeconfig; returns its key path.
pub fn create_bootstrap_csr(a: &Appliance, name: &str, node: &str) -> PathBuf {
    let (key, pem) = openssl_csr(
        a.dir.path(),
        name,
        &format!("/O=system:nodes/CN=system:node:{node}"),
        None,
    );
    let manifest = csr_manifest(
        name,
        &pem,
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
    );
    let file = a.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, manifest).unwrap();
    kubectl_ok(
        &a.bootstrap_kubeconfig(),
        &["create", "-f", file.to_str().unwrap()],
    );
    key
}

/// The CSR's `status.certificate` (PEM), if set.
pub fn certificate_of(a: &Appliance, name: &str) -> Option<String> {
    let out = kubectl(
        &a.admin_kubeconfig(),
        &["get", "csr", name, "-o", "jsonpath={.status.certificate}"],
    );
    let b64 = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || b64.is_empty() {
        return None;
    }
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    Some(String::from_utf8(pem).unwrap())
}

/// The CSR's condition types.
pub fn conditions_of(a: &Appliance, name: &str) -> String {
    kubectl_ok(
        &a.admin_kubeconfig(),
        &[
            "get",
            "csr",
            name,
            "-o",
            "jsonpath={.status.conditions[*].type}",
        ],
    )
}

/// A kubeconfig for the node whose client certificate is `cert_pem` (key in `key`).
pub fn node_kubeconfig(a: &Appliance, node: &str, cert_pem: &str, key: &Path) -> PathBuf {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let ca = std::fs::read(a.state().join("ca.crt")).unwrap();
    let key_pem = std::fs::read(key).unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{addr}\n    certificate-authority-data: {ca}\n\
         users:\n- name: {node}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: {node}\ncurrent-context: c\n",
        addr = a.addr,
        ca = b64(&ca),
        cert = b64(cert_pem.as_bytes()),
        key = b64(&key_pem),
    );
    let p = a.dir.path().join(format!("{node}.kubeconfig"));
    std::fs::write(&p, text).unwrap();
    p
}

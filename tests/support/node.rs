//! End-to-end set-up for the node side: the appliance's HTTPS server in process (a software CA
//! key: the PKCS#11 signer has its own SoftHSM tests), bootstrap tokens made by the real
//! `kubesigner token create`, an admin kubeconfig for the real `kubectl`, and the real
//! `kubesigner bootstrap` binary as the node.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::api_support;
pub use super::tools;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kubesigner::app::serve::Server;
use kubesigner::config::{Config, IssuanceConfig};
use kubesigner::issue::{CaBundle, Issuer, admin_client_certificate};

pub const BOOTSTRAP_GROUP_TOKEN: &str = "3f0a1b2c3d4e5f60718293a4b5c6d7e8";

/// The signing appliance, served in process on a fixed port (so it can be restarted).
pub struct Signer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    key: Arc<api_support::SoftKey>,
    /// The server's own runtime: dropped on stop, which closes every open connection (open
    /// watches included), as a process restart would.
    rt: Option<tokio::runtime::Runtime>,
    server: Option<Server>,
}

impl Signer {
    /// Starts an appliance; `inventory` is the node inventory TOML.
    pub fn start(inventory: &str) -> Signer {
        Self::start_with(inventory, "127.0.0.1", "")
    }

    /// Starts an appliance listening on `host` (`127.0.0.1`, or `[::]` for both families),
    /// with `issuance_extra` appended to its `[issuance]` section.
    pub fn start_with(inventory: &str, host: &str, issuance_extra: &str) -> Signer {
        Self::start_full(inventory, host, issuance_extra, false)
    }

    /// An appliance that issues node certificates living `max_ttl` (e.g. "4s"). Its TLS
    /// certificate is made beforehand from the same CA with a day's lifetime (the generated
    /// one would be capped by `max_ttl` too).
    pub fn start_short_lived(max_ttl: &str) -> Signer {
        Self::start_full("", "127.0.0.1", &format!("max_ttl = {max_ttl:?}"), true)
    }

    fn start_full(inventory: &str, host: &str, issuance_extra: &str, own_tls: bool) -> Signer {
        let dir = tempfile::tempdir().unwrap();
        let key = api_support::SoftKey::generate();
        let pem = api_support::ca_pem(&key);
        std::fs::write(dir.path().join("ca.crt"), &pem).unwrap();
        let server_extra = if own_tls {
            write_tls_files(dir.path(), &pem, &key)
        } else {
            String::new()
        };
        std::fs::write(dir.path().join("nodes.toml"), inventory).unwrap();
        // A static token in the seeds' group: may create client CSRs, not auto-approved.
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!(
                "{BOOTSTRAP_GROUP_TOKEN},kubelet-bootstrap,10001,\"system:kubelet-bootstrap\"\n"
            ),
        )
        .unwrap();
        let port = tools::free_port();
        let d = dir.path();
        std::fs::write(
            d.join("kubesigner.toml"),
            format!(
                "data_dir = {:?}\n[signer]\nkey = \"pkcs11:token=unused;object=unused\"\n\
                 [ca]\ncert_file = {:?}\n[server]\nlisten = \"{host}:{port}\"\n{server_extra}\
                 [auth]\ntoken_auth_file = {:?}\n[issuance]\nnode_inventory = {:?}\n\
                 {issuance_extra}\n",
                d.join("data"),
                d.join("ca.crt"),
                d.join("tokens.csv"),
                d.join("nodes.toml"),
            ),
        )
        .unwrap();
        let mut s = Signer {
            dir,
            port,
            key,
            rt: None,
            server: None,
        };
        s.serve();
        s.write_admin_kubeconfig(&pem);
        s
    }

    fn config(&self) -> Config {
        let text = std::fs::read_to_string(self.config_path()).unwrap();
        Config::parse(&text).unwrap()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("kubesigner.toml")
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The URL over the IPv6 loopback (needs `start_with(.., "[::]", ..)`).
    pub fn url_v6(&self) -> String {
        format!("https://[::1]:{}", self.port)
    }

    /// The data dir (the store may be opened read-side while the server runs).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn serve(&mut self) {
        let cfg = self.config();
        let key = self.key.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                // The port may still be held a moment after a restart.
                match Server::start_with_key(&cfg, key.clone(), Arc::new(|| true)).await {
                    Ok(s) => return s,
                    Err(e) if Instant::now() < deadline => {
                        eprintln!("server start: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!("server start: {e}"),
                }
            }
        });
        self.server = Some(server);
        self.rt = Some(rt);
    }

    pub fn stop(&mut self) {
        if let (Some(s), Some(rt)) = (self.server.take(), self.rt.take()) {
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), s.shutdown()).await;
            });
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }

    /// Stops and starts the server again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.serve();
    }

    fn write_admin_kubeconfig(&self, ca_pem: &str) {
        let cfg = self.config();
        let issuer = Issuer::new(
            CaBundle::from_pem(ca_pem.as_bytes()).unwrap(),
            self.key.clone(),
            IssuanceConfig::default(),
        )
        .unwrap();
        let _ = cfg;
        let admin = admin_client_certificate(&issuer, SystemTime::now(), Duration::from_secs(3600))
            .unwrap();
        let k = kubesigner::kubeconfig::Kubeconfig {
            server: self.url(),
            ca_pem: ca_pem.to_string(),
            user_name: "admin".into(),
            credential: kubesigner::kubeconfig::Credential::ClientCertificate {
                cert_pem: admin.certificate.pem_chain.clone(),
                key_pem: admin.key_pem.clone(),
            },
        };
        k.write(&self.admin_kubeconfig()).unwrap();
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    /// A bootstrap token from the real `kubesigner token create`.
    pub fn create_token(&self, ttl: &str) -> String {
        let out = Command::new(bin())
            .args(["token", "create", "--ttl", ttl, "--config"])
            .arg(self.config_path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Writes a bootstrap kubeconfig holding `token` into `dir`.
    pub fn bootstrap_kubeconfig(&self, dir: &Path, token: &str) -> PathBuf {
        self.bootstrap_kubeconfig_at(dir, token, &self.url())
    }

    /// Writes a bootstrap kubeconfig for `server` holding `token` into `dir`.
    pub fn bootstrap_kubeconfig_at(&self, dir: &Path, token: &str, server: &str) -> PathBuf {
        let k = kubesigner::kubeconfig::Kubeconfig {
            server: server.to_string(),
            ca_pem: std::fs::read_to_string(self.ca()).unwrap(),
            user_name: "kubelet-bootstrap".into(),
            credential: kubesigner::kubeconfig::Credential::Token(token.to_string().into()),
        };
        let p = dir.join("bootstrap.kubeconfig");
        k.write(&p).unwrap();
        p
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A day-long TLS serving certificate from the CA (default issuance settings), written as
/// `tls.crt` / `tls.key`; returns the `[server]` lines naming them.
fn write_tls_files(dir: &Path, ca_pem: &str, key: &Arc<api_support::SoftKey>) -> String {
    use der::pem::LineEnding;
    let issuer = Issuer::new(
        CaBundle::from_pem(ca_pem.as_bytes()).unwrap(),
        key.clone(),
        IssuanceConfig::default(),
    )
    .unwrap();
    let id = kubesigner::api::edge::serving::serving_identity(
        &issuer,
        "127.0.0.1:0".parse().unwrap(),
        &[],
        Duration::from_secs(86400),
    )
    .unwrap();
    let chain: String = id
        .chain
        .iter()
        .map(|c| der::pem::encode_string("CERTIFICATE", LineEnding::LF, c.as_ref()).unwrap())
        .collect();
    let key_pem =
        der::pem::encode_string("PRIVATE KEY", LineEnding::LF, id.key.secret_der()).unwrap();
    std::fs::write(dir.join("tls.crt"), chain).unwrap();
    std::fs::write(dir.join("tls.key"), key_pem).unwrap();
    format!(
        "tls_cert_file = {:?}\ntls_private_key_file = {:?}\n",
        dir.join("tls.crt"),
        dir.join("tls.key")
    )
}

pub use tools::bin;

/// A node: its own directory with the bootstrap kubeconfig, OUT kubeconfig and cert dir.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub bootstrap: PathBuf,
}

impl Node {
    pub fn new(signer: &Signer, name: &str, token: &str) -> Node {
        Self::at(signer, name, token, &signer.url())
    }

    /// A node whose bootstrap kubeconfig names `server` (e.g. the IPv6 loopback URL).
    pub fn at(signer: &Signer, name: &str, token: &str, server: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = signer.bootstrap_kubeconfig_at(dir.path(), token, server);
        Node {
            dir,
            name: name.to_string(),
            bootstrap,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubelet.conf")
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// `kubesigner bootstrap` for this node with `extra` arguments.
    pub fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("bootstrap")
            .arg("--bootstrap-kubeconfig")
            .arg(&self.bootstrap)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cert-dir")
            .arg(self.cert_dir())
            .args(["--node-name", &self.name])
            .args(extra)
            .env("KUBESIGNER_LOG", "info")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }

    /// Starts `kubesigner bootstrap` in the background, its log in the node dir.
    pub fn spawn(&self, extra: &[&str]) -> Child {
        let log = std::fs::File::create(self.log_path()).unwrap();
        self.command(extra)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bootstrap.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The target of `<prefix>-current.pem`.
    pub fn current(&self, prefix: &str) -> Option<PathBuf> {
        std::fs::read_link(self.cert_dir().join(format!("{prefix}-current.pem"))).ok()
    }

    /// The files in the cert dir, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = match std::fs::read_dir(self.cert_dir()) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

/// The node tests hand kubectl its kubeconfig by flag, the cache next to it.
const VIA: tools::Via = tools::Via::Flag {
    cache: ".kube-cache",
};

/// Runs the real kubectl.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    tools::kubectl(VIA, kubeconfig, args)
}

/// kubectl that must succeed; returns stdout.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    tools::kubectl_ok(VIA, kubeconfig, args)
}

/// Waits until `f` returns Some, up to `secs` seconds ([`tools::wait_for_some`]).
pub fn wait_for<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    tools::wait_for_some(what, Duration::from_secs(secs), f)
}

/// Waits for a child to exit, up to `secs`; kills it and fails otherwise.
pub fn wait_exit(child: &mut Child, secs: u64, log: impl Fn() -> String) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bootstrap did not exit in {secs} s:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The names of the pending CSRs of `signer` visible to the admin.
pub fn pending(admin: &Path, signer: &str) -> Vec<String> {
    let out = kubectl_ok(
        admin,
        &[
            "get",
            "csr",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.signerName} {.status.conditions[*].type}{\"\\n\"}{end}",
        ],
    );
    out.lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            let name = p.next()?;
            let s = p.next()?;
            (s == signer && p.next().is_none()).then(|| name.to_string())
        })
        .collect()
}

/// The subject, SANs and EKU of a PEM certificate, from `openssl x509 -text`.
pub fn x509_text(pem_file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-nameopt", "RFC2253", "-in"])
        .arg(pem_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl verify -CAfile ca leaf` and pkilint at WARNING: returns the findings
/// (`appliance::check_certificate` with nothing allowed).
pub fn verify_and_lint(dir: &Path, pem_file: &Path, ca: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(pem_file).unwrap();
    super::appliance::check_certificate(dir, &text, ca, &[])
}

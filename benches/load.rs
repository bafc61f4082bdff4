//! HTTPS load generator for `bench/run` (not a test, not a micro-benchmark): issues N
//! certificates over HTTPS with keep-alive at a fixed concurrency, against kubesigner (a
//! bootstrap-token CSR per node; the create answer carries the certificate when signing is
//! synchronous, otherwise the CSR is polled until it has one) or against `cfssl serve`
//! (`/api/v1/cfssl/sign`). Every request uses its own P-256 key and CSR, made before the clock
//! starts. Prints one `result ...` line (rate, p50/p99 latency, errors).
//!
//!     load --target kubesigner|cfssl --url URL --ca CA.pem [--token-file F] \
//!          --requests N --concurrency C [--prefix NAME]
//!
//! Any answer other than 2xx (429 included), a transport error or a missing certificate
//! counts as an error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kubesigner::node_client::csr::{CertKind, build_csr};
use kubesigner::node_client::key::NodeKey;
use kubesigner::node_client::node::NodeName;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const CSR_PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
/// How long a CSR without a certificate in its create answer is polled for.
const WAIT_FOR_CERT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Kubesigner,
    Cfssl,
}

struct Args {
    target: Target,
    url: String,
    ca: String,
    token: String,
    requests: usize,
    concurrency: usize,
    prefix: String,
}

fn args() -> Args {
    let mut a = Args {
        target: Target::Kubesigner,
        url: String::new(),
        ca: String::new(),
        token: String::new(),
        requests: 1000,
        concurrency: 1,
        prefix: "bench".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--bench" => {}
            "--target" => {
                a.target = match it.next().unwrap().as_str() {
                    "cfssl" => Target::Cfssl,
                    _ => Target::Kubesigner,
                }
            }
            "--url" => a.url = it.next().unwrap(),
            "--ca" => a.ca = it.next().unwrap(),
            "--token-file" => {
                a.token = std::fs::read_to_string(it.next().unwrap())
                    .unwrap()
                    .trim()
                    .to_owned()
            }
            "--requests" => a.requests = it.next().unwrap().parse().unwrap(),
            "--concurrency" => a.concurrency = it.next().unwrap().parse().unwrap(),
            "--prefix" => a.prefix = it.next().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Request bodies, one per certificate, made before the clock starts.
fn bodies(a: &Args) -> Vec<(String, Bytes)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    (0..a.requests)
        .map(|i| {
            let name = format!("{}-{i}", a.prefix);
            let node = NodeName::parse(&name).unwrap();
            let key = NodeKey::generate().unwrap();
            let pem = build_csr(&key, &node, &CertKind::Client).unwrap();
            let body = match a.target {
                Target::Kubesigner => serde_json::json!({
                    "apiVersion": "certificates.k8s.io/v1",
                    "kind": "CertificateSigningRequest",
                    "metadata": {"name": format!("csr-{name}")},
                    "spec": {
                        "request": b64.encode(pem.as_bytes()),
                        "signerName": CertKind::Client.signer_name(),
                        "usages": CertKind::Client.usages(),
                    }
                }),
                Target::Cfssl => serde_json::json!({"certificate_request": pem}),
            };
            (format!("csr-{name}"), Bytes::from(body.to_string()))
        })
        .collect()
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client(ca: &str, concurrency: usize) -> HttpsClient {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(cfg)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build(https)
}

struct Shared {
    a: Args,
    client: HttpsClient,
    bodies: Vec<(String, Bytes)>,
    next: AtomicUsize,
    errors: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn request(
        &self,
        method: hyper::Method,
        path: &str,
        body: Bytes,
    ) -> hyper::Request<Full<Bytes>> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.a.url))
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if self.a.target == Target::Kubesigner {
            b = b.header("authorization", format!("Bearer {}", self.a.token));
        }
        b.body(Full::new(body)).unwrap()
    }

    async fn call(
        &self,
        method: hyper::Method,
        path: &str,
        body: Bytes,
    ) -> Result<serde_json::Value, String> {
        let resp = self
            .client
            .request(self.request(method, path, body))
            .await
            .map_err(|e| format!("transport: {e:?}"))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("json: {e}"))
    }

    /// One certificate, end to end.
    async fn one(&self, i: usize) -> Result<(), String> {
        let (name, body) = &self.bodies[i];
        match self.a.target {
            Target::Cfssl => {
                let v = self
                    .call(hyper::Method::POST, "/api/v1/cfssl/sign", body.clone())
                    .await?;
                match v["result"]["certificate"].as_str() {
                    Some(c) if c.contains("BEGIN CERTIFICATE") => Ok(()),
                    _ => Err(format!("no certificate: {v}")),
                }
            }
            Target::Kubesigner => {
                let mut v = self
                    .call(hyper::Method::POST, CSR_PATH, body.clone())
                    .await?;
                let deadline = Instant::now() + WAIT_FOR_CERT;
                while v["status"]["certificate"].as_str().is_none() {
                    if Instant::now() > deadline {
                        return Err(format!("no certificate for {name}"));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    v = self
                        .call(
                            hyper::Method::GET,
                            &format!("{CSR_PATH}/{name}"),
                            Bytes::new(),
                        )
                        .await?;
                }
                Ok(())
            }
        }
    }
}

async fn worker(s: Arc<Shared>) -> Vec<Duration> {
    let mut lat = Vec::new();
    loop {
        let i = s.next.fetch_add(1, Ordering::Relaxed);
        if i >= s.bodies.len() {
            return lat;
        }
        let t = Instant::now();
        match s.one(i).await {
            Ok(()) => lat.push(t.elapsed()),
            Err(e) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                let mut f = s.first_error.lock().unwrap();
                if f.is_none() {
                    *f = Some(e);
                }
            }
        }
    }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bodies = bodies(&a);
    let client = client(&a.ca, a.concurrency);
    let conc = a.concurrency;
    let s = Arc::new(Shared {
        a,
        client,
        bodies,
        next: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        first_error: std::sync::Mutex::new(None),
    });
    let (secs, mut lat) = rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..conc).map(|_| tokio::spawn(worker(s.clone()))).collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        (start.elapsed().as_secs_f64(), lat)
    });
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let errors = s.errors.load(Ordering::Relaxed);
    if let Some(e) = s.first_error.lock().unwrap().as_ref() {
        eprintln!("load: first error: {}", &e[..e.len().min(400)]);
    }
    println!(
        "result requests={} concurrency={conc} ok={} errors={errors} secs={secs:.3} rate={:.1} p50_ms={:.2} p99_ms={:.2}",
        s.bodies.len(),
        lat.len(),
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}

//! Shared set-up for the in-process API tests: a store in a temp dir, a software CA key (the
//! API tests exercise the HTTP layer and the store; the PKCS#11 signer has its own SoftHSM
//! tests), real `issue` validation and issuance, and callers of each kind.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use bytes::Bytes;
use der::EncodePem;
use der::asn1::{Any, BitString};
use der::pem::LineEnding;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use kubesigner::api::hooks::{Authenticate, AuthnResult};
use kubesigner::api::{Api, Limits};
use kubesigner::authn::{AuthMethod, BootstrapTokenId, BootstrapTokenInfo, Identity};
use kubesigner::authz::AuthzConfig;
use kubesigner::config::IssuanceConfig;
use kubesigner::core::Core;
use kubesigner::issue::{CaBundle, Issuer, ca};
use kubesigner::signer::{SignKey, SignerError};
use kubesigner::store::Store;
use rustls_pki_types::CertificateDer;
use serde_json::{Value, json};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// A P-256 key in software.
pub struct SoftKey {
    pair: EcdsaKeyPair,
    spki: SubjectPublicKeyInfoOwned,
}

impl SoftKey {
    pub fn generate() -> Arc<SoftKey> {
        Self::from_pkcs8(&Self::new_pkcs8())
    }

    pub fn new_pkcs8() -> Vec<u8> {
        let rng = SystemRandom::new();
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Arc<SoftKey> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).unwrap();
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: kubesigner::issue::oids::EC_PUBLIC_KEY,
                parameters: Some(Any::from(&kubesigner::issue::oids::SECP256R1)),
            },
            subject_public_key: BitString::from_bytes(pair.public_key().as_ref()).unwrap(),
        };
        Arc::new(SoftKey { pair, spki })
    }
}

impl SignKey for SoftKey {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: kubesigner::issue::oids::ECDSA_WITH_SHA256,
            parameters: None,
        }
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignerError::BadSignature)
    }
}

/// A PEM CSR for `subject` with a fresh key.
pub fn csr_pem(subject: &str) -> String {
    let key = SoftKey::generate();
    let name = ca::parse_subject(subject).unwrap();
    ca::ca_request(key.as_ref(), name)
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A CSR body as kubectl would send it.
pub fn csr_json(name: &str, subject: &str, signer: &str) -> Value {
    json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "creationTimestamp": null},
        "spec": {"request": b64(&csr_pem(subject)), "signerName": signer,
                 "usages": ["digital signature", "client auth"]},
    })
}

pub const CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";

pub fn node_csr(name: &str, node: &str) -> Value {
    csr_json(
        name,
        &format!("CN=system:node:{node},O=system:nodes"),
        CLIENT,
    )
}

fn id(user: &str, groups: &[&str], method: AuthMethod) -> Identity {
    let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    groups.push("system:authenticated".to_owned());
    Identity {
        user: user.to_owned(),
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
        method,
    }
}

pub fn admin() -> Identity {
    id(
        "kubesigner-admin",
        &["system:masters"],
        AuthMethod::ClientCertificate,
    )
}

pub fn bootstrap(patterns: &[&str]) -> Identity {
    id(
        "system:bootstrap:abcdef",
        &["system:bootstrappers"],
        AuthMethod::BootstrapToken(BootstrapTokenInfo {
            id: BootstrapTokenId::parse("abcdef").unwrap(),
            node_name_patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        }),
    )
}

pub fn node(n: &str) -> Identity {
    id(
        &format!("system:node:{n}"),
        &["system:nodes"],
        AuthMethod::ClientCertificate,
    )
}

/// The seeds' static-token user.
pub fn kubelet_bootstrap() -> Identity {
    id(
        "kubelet-bootstrap",
        &["system:kubelet-bootstrap"],
        AuthMethod::StaticToken,
    )
}

pub fn nobody() -> Identity {
    id("mallory", &[], AuthMethod::StaticToken)
}

/// Nobody authenticates through the transport in these tests: callers are passed in.
struct NoTransportAuth;

impl Authenticate for NoTransportAuth {
    fn authenticate(&self, _: Option<&[CertificateDer<'static>]>, _: Option<&[u8]>) -> AuthnResult {
        AuthnResult::Anonymous
    }
}

/// One appliance: API over a store in `dir`, CA key `key`.
pub struct Harness {
    pub api: Api,
    pub ready: Arc<AtomicBool>,
    pub ca_pem: String,
}

pub fn ca_pem(key: &SoftKey) -> String {
    let cert = ca::self_signed_ca(
        key,
        ca::parse_subject("CN=kubesigner-test-ca").unwrap(),
        SystemTime::now() - Duration::from_secs(3600),
        Duration::from_secs(10 * 365 * 86400),
    )
    .unwrap();
    cert.to_pem(LineEnding::LF).unwrap()
}

pub fn harness_with(
    dir: &Path,
    key: Arc<SoftKey>,
    ca_pem: String,
    issuance: IssuanceConfig,
    limits: Limits,
) -> Harness {
    let store = Store::open(dir).unwrap();
    let bundle = CaBundle::from_pem(ca_pem.as_bytes()).unwrap();
    let issuer = Issuer::new(bundle, key, issuance.clone()).unwrap();
    let ready = Arc::new(AtomicBool::new(true));
    let r = ready.clone();
    let auth = kubesigner::config::AuthConfig::default();
    let approver = kubesigner::policy::Approver::new(&auth, &issuance, None).unwrap();
    let core = Core::new(
        Arc::new(issuer),
        issuance,
        auth.admin_groups,
        approver,
        Arc::new(move || r.load(Ordering::SeqCst)),
    );
    let api = Api::new(
        store,
        Arc::new(NoTransportAuth),
        AuthzConfig::default(),
        Arc::new(core),
        limits,
    );
    Harness { api, ready, ca_pem }
}

pub fn harness(dir: &Path) -> Harness {
    let key = SoftKey::generate();
    let pem = ca_pem(&key);
    harness_with(dir, key, pem, IssuanceConfig::default(), Limits::default())
}

/// A response: code, headers, body (JSON when it parses, else a JSON string).
pub struct Reply {
    pub code: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

pub async fn call_raw(
    api: &Api,
    who: Option<Identity>,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body))).unwrap();
    let auth = match who {
        Some(i) => AuthnResult::Authenticated(i),
        None => AuthnResult::Anonymous,
    };
    let resp = api.handle_as(req, auth).await;
    let code = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        code,
        headers,
        body,
    }
}

pub async fn call(
    api: &Api,
    who: &Identity,
    method: Method,
    uri: &str,
    body: Option<&Value>,
) -> Reply {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    call_raw(api, Some(who.clone()), method, uri, headers, bytes).await
}

pub async fn create(api: &Api, who: &Identity, body: &Value) -> Reply {
    call(api, who, Method::POST, CSRS, Some(body)).await
}

pub async fn get(api: &Api, who: &Identity, name: &str) -> Reply {
    call(api, who, Method::GET, &format!("{CSRS}/{name}"), None).await
}

pub fn condition_types(obj: &Value) -> Vec<String> {
    obj["status"]["conditions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["type"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn has_certificate(obj: &Value) -> bool {
    obj["status"]["certificate"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
}

/// kubectl certificate approve|deny: append the condition, PUT /approval with the full object.
pub async fn decide(api: &Api, who: &Identity, name: &str, type_: &str) -> Reply {
    let mut obj = get(api, who, name).await.body;
    let cond = json!({"type": type_, "status": "True", "reason": format!("Kubectl{type_}"), "message": "by test", "lastUpdateTime": "2026-01-01T01:00:00+01:00", "lastTransitionTime": null});
    let status = obj
        .as_object_mut()
        .unwrap()
        .entry("status")
        .or_insert(json!({}));
    let conds = status
        .as_object_mut()
        .unwrap()
        .entry("conditions")
        .or_insert(json!([]));
    conds.as_array_mut().unwrap().push(cond);
    call(
        api,
        who,
        Method::PUT,
        &format!("{CSRS}/{name}/approval"),
        Some(&obj),
    )
    .await
}

/// One HTTPS request with a bearer token (blocking); returns the status code and JSON body.
pub fn https_request(
    port: u16,
    ca: &Path,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut roots = rustls::RootCertStore::empty();
    for c in kubesigner::tls::load_certs(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
    let mut s = rustls::StreamOwned::new(conn, TcpStream::connect(("127.0.0.1", port)).unwrap());
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json_start = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(text.len());
    // Responses are small and not chunked when Content-Length is known; tolerate chunking.
    let payload = &text[json_start..];
    let value = serde_json::from_str(payload).unwrap_or_else(|_| {
        let inner = payload
            .lines()
            .filter(|l| l.starts_with('{'))
            .collect::<String>();
        serde_json::from_str(&inner).unwrap_or(Value::Null)
    });
    (code, value)
}

/// The next newline-delimited watch event (5 s per frame), or None when the stream ends.
pub async fn next_event(
    body: &mut kubesigner::api::body::ResponseBody,
    buf: &mut String,
) -> Option<Value> {
    loop {
        if let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            return Some(serde_json::from_str(&line).unwrap());
        }
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .ok()??
            .ok()?;
        if let Ok(data) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

/// Opens a watch on the CSR collection as `who` with the extra `query`.
pub async fn open_watch(
    h: &Harness,
    who: &kubesigner::authn::Identity,
    query: &str,
) -> (StatusCode, kubesigner::api::body::ResponseBody) {
    let req = http::Request::get(format!("{CSRS}?watch=1&{query}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let resp = h
        .api
        .handle_as(
            req,
            kubesigner::api::hooks::AuthnResult::Authenticated(who.clone()),
        )
        .await;
    (resp.status(), resp.into_body())
}

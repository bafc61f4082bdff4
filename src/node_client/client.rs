//! A small Kubernetes API client for the CSR calls a kubelet makes: create, get, list and
//! watch by name, `/healthz`. HTTPS only (hyper-util's client over hyper-rustls with the
//! aws-lc-rs provider), the server verified against the kubeconfig's CA, authenticated with a
//! bearer token or a client certificate. Bodies are bounded; JSON, except that a client made
//! [`ApiClient::with_protobuf`] (the rotation and serving path, as the kubelet's `certConfig`)
//! sends its CSR as Kubernetes protobuf with `Accept: protobuf, json`, decodes either answer by
//! its `Content-Type`, and goes back to JSON for good if the server answers 415.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::name::CsrName;
pub use super::watch_stream::WatchStream;
use crate::api::codec::media::{JSON, PROTOBUF};
use crate::api::codec::protobuf::{ProtobufError, decode_csr, encode_csr};

/// Largest response body read: the apiserver's own request limit is 3 MiB (reference §6.5);
/// a CSR with its certificate is a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 3 * 1024 * 1024;
/// Time allowed for one ordinary request (connect, TLS, answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra time a watch stream may stay silent beyond its `timeoutSeconds` before it is
/// treated as dropped (the server closes it at `timeoutSeconds`).
const WATCH_GRACE: Duration = Duration::from_secs(30);
const CSR_PATH: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
/// What the kubelet's protobuf client accepts (client-go: protobuf first, JSON as fallback).
const ACCEPT_PROTOBUF_OR_JSON: &str = "application/vnd.kubernetes.protobuf, application/json";

/// Client-side errors talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not an `https://` URL.
    #[error("server URL {url:?} is not a valid https URL")]
    BadUrl {
        /// The URL.
        url: String,
    },
    /// The CA or the client certificate/key could not be used.
    #[error("TLS setup: {what}")]
    Tls {
        /// What was wrong.
        what: &'static str,
    },
    /// The bearer token holds characters an HTTP header cannot carry.
    #[error("the bearer token is not a valid HTTP header value")]
    BadToken,
    /// Connecting or exchanging the request failed.
    #[error("request to {path} failed: {source}")]
    Transport {
        /// The path requested.
        path: String,
        /// Why.
        source: hyper_util::client::legacy::Error,
    },
    /// Reading the body failed or it exceeded [`MAX_RESPONSE_BYTES`].
    #[error("reading the answer from {path} failed")]
    Body {
        /// The path requested.
        path: String,
    },
    /// No answer in time.
    #[error("request to {path} timed out")]
    Timeout {
        /// The path requested.
        path: String,
    },
    /// The server answered with a Kubernetes `Status` error.
    #[error("server refused {path}: {code} {reason}: {message}")]
    Status {
        /// The path requested.
        path: String,
        /// HTTP code.
        code: u16,
        /// `Status.reason` (`AlreadyExists`, `Forbidden`, `Expired`, …).
        reason: String,
        /// `Status.message`.
        message: String,
    },
    /// The answer is not the JSON expected.
    #[error("unexpected answer from {path}: {source}")]
    Decode {
        /// The path requested.
        path: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A protobuf answer does not decode.
    #[error("unexpected protobuf answer from {path}: {source}")]
    DecodeProtobuf {
        /// The path requested.
        path: String,
        /// The protobuf error.
        source: ProtobufError,
    },
}

impl ClientError {
    /// The HTTP code of a `Status` answer.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The credential a client presents.
pub enum Credential {
    /// Bearer token.
    Token(SecretString),
    /// PEM client certificate chain and private key.
    Certificate {
        /// Certificate chain.
        cert_pem: Vec<u8>,
        /// Private key (zeroized on drop).
        key_pem: Zeroizing<Vec<u8>>,
    },
}

/// A CSR API client for one server and one credential.
#[derive(Clone)]
pub struct ApiClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    token: Option<Arc<SecretString>>,
    /// Send CSR bodies as protobuf (cleared when the server answers 415).
    protobuf: Arc<AtomicBool>,
}

fn tls_err(what: &'static str) -> ClientError {
    ClientError::Tls { what }
}

impl ApiClient {
    /// A client for `server` trusting only `ca_pem`.
    pub fn new(
        server: &str,
        ca_pem: &[u8],
        tls_server_name: Option<&str>,
        credential: Credential,
    ) -> Result<Self, ClientError> {
        let uri: Uri = server.parse().map_err(|_| ClientError::BadUrl {
            url: server.to_string(),
        })?;
        if uri.scheme_str() != Some("https") || uri.host().is_none() {
            return Err(ClientError::BadUrl {
                url: server.to_string(),
            });
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|_| tls_err("the CA bundle is not PEM"))?;
            roots
                .add(cert)
                .map_err(|_| tls_err("a CA certificate is not usable"))?;
        }
        if roots.is_empty() {
            return Err(tls_err("the CA bundle holds no certificate"));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| tls_err("no TLS protocol version"))?
            .with_root_certificates(roots);
        let (config, token) = match credential {
            Credential::Token(t) => (builder.with_no_client_auth(), Some(Arc::new(t))),
            Credential::Certificate { cert_pem, key_pem } => {
                let chain = CertificateDer::pem_slice_iter(&cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| tls_err("the client certificate is not PEM"))?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem)
                    .map_err(|_| tls_err("the client key is not PEM"))?;
                let config = builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|_| tls_err("the client certificate and key do not fit"))?;
                (config, None)
            }
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only();
        let https = match tls_server_name {
            Some(name) => {
                let name = ServerName::try_from(name.to_string())
                    .map_err(|_| tls_err("tls-server-name is not a valid name"))?;
                https.with_server_name_resolver(FixedServerNameResolver::new(name))
            }
            None => https,
        };
        let http = Client::builder(TokioExecutor::new()).build(https.enable_http1().build());
        Ok(Self {
            http,
            base: server.trim_end_matches('/').to_string(),
            token,
            protobuf: Arc::new(AtomicBool::new(false)),
        })
    }

    /// This client, sending CSR bodies as Kubernetes protobuf (the kubelet's rotation path).
    #[must_use]
    pub fn with_protobuf(self) -> Self {
        Self {
            protobuf: Arc::new(AtomicBool::new(true)),
            ..self
        }
    }

    /// The encoding CSR bodies go out in now (`protobuf`, or `json`).
    pub fn body_encoding(&self) -> &'static str {
        if self.protobuf.load(Ordering::Relaxed) {
            "protobuf"
        } else {
            "json"
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let url = format!("{}{}", self.base, path);
        let accept = match &body {
            Some((_, PROTOBUF)) => ACCEPT_PROTOBUF_OR_JSON,
            _ => JSON,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::ACCEPT, accept);
        if let Some(token) = &self.token {
            let value = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
            let mut value =
                header::HeaderValue::from_str(&value).map_err(|_| ClientError::Tls {
                    what: "the bearer token is not a valid header value",
                })?;
            value.set_sensitive(true);
            req = req.header(header::AUTHORIZATION, value);
        }
        let body = match body {
            Some((bytes, content_type)) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Vec::new(),
        };
        req.body(Full::new(Bytes::from(body)))
            .map_err(|_| ClientError::BadUrl { url })
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
        path: &str,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.http.request(req)).await {
            Err(_) => Err(ClientError::Timeout {
                path: path.to_string(),
            }),
            Ok(Err(source)) => Err(ClientError::Transport {
                path: path.to_string(),
                source,
            }),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// One request; the answer's `Content-Type` and body on success.
    async fn fetch(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<(Option<String>, Bytes), ClientError> {
        let req = self.request(method, path, body)?;
        let resp = self.send(req, path).await?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let read = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect();
        let bytes = match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => {
                return Err(ClientError::Body {
                    path: path.to_string(),
                });
            }
            Err(_) => {
                return Err(ClientError::Timeout {
                    path: path.to_string(),
                });
            }
        };
        if !status.is_success() {
            return Err(status_error(path, status, &bytes));
        }
        Ok((content_type, bytes))
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<T, ClientError> {
        let (_, bytes) = self.fetch(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            path: path.to_string(),
            source,
        })
    }

    /// `POST` a CSR; returns the stored object. Protobuf first when this client sends
    /// protobuf; JSON otherwise, or after the server refused protobuf with 415.
    pub async fn create_csr(
        &self,
        csr: &CertificateSigningRequest,
    ) -> Result<CertificateSigningRequest, ClientError> {
        if self.protobuf.load(Ordering::Relaxed) {
            let body = Some((encode_csr(csr), PROTOBUF));
            match self.fetch(Method::POST, CSR_PATH, body).await {
                Ok((content_type, bytes)) => return decode_answer(content_type, &bytes),
                Err(e) if e.code() == Some(415) => {
                    tracing::warn!("the server does not take protobuf bodies; sending JSON");
                    self.protobuf.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let body = serde_json::to_vec(csr).map_err(|source| ClientError::Decode {
            path: CSR_PATH.to_string(),
            source,
        })?;
        self.call(Method::POST, CSR_PATH, Some((body, JSON))).await
    }

    /// `GET` a CSR by name.
    pub async fn get_csr(&self, name: &CsrName) -> Result<CertificateSigningRequest, ClientError> {
        self.call(Method::GET, &format!("{CSR_PATH}/{}", name.as_str()), None)
            .await
    }

    /// `LIST` with `fieldSelector=metadata.name=<name>`; returns the items and the list's
    /// resourceVersion.
    pub async fn list_csr(
        &self,
        name: &CsrName,
    ) -> Result<(Vec<CertificateSigningRequest>, String), ClientError> {
        #[derive(Deserialize)]
        struct ListMeta {
            #[serde(rename = "resourceVersion", default)]
            resource_version: String,
        }
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            items: Vec<CertificateSigningRequest>,
            metadata: ListMeta,
        }
        let path = format!(
            "{CSR_PATH}?fieldSelector=metadata.name%3D{}&limit=500",
            name.as_str()
        );
        let list: List = self.call(Method::GET, &path, None).await?;
        Ok((list.items, list.metadata.resource_version))
    }

    /// Starts a `WATCH` from `resource_version`, filtered to `name`.
    pub async fn watch_csr(
        &self,
        name: &CsrName,
        resource_version: &str,
        timeout: Duration,
    ) -> Result<WatchStream, ClientError> {
        let rv: String = resource_version
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let path = format!(
            "{CSR_PATH}?allowWatchBookmarks=true&fieldSelector=metadata.name%3D{}\
             &resourceVersion={rv}&timeoutSeconds={}&watch=true",
            name.as_str(),
            timeout.as_secs()
        );
        let req = self.request(Method::GET, &path, None)?;
        let resp = self.send(req, &path).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(status_error(&path, status, &body));
        }
        Ok(WatchStream::new(
            resp.into_body(),
            timeout + WATCH_GRACE,
            path,
        ))
    }

    /// `GET /healthz`; true on 200.
    pub async fn healthz(&self) -> bool {
        let Ok(req) = self.request(Method::GET, "/healthz", None) else {
            return false;
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), self.http.request(req)).await,
            Ok(Ok(r)) if r.status() == StatusCode::OK
        )
    }
}

/// A CSR answer, decoded by its `Content-Type` (protobuf or JSON).
fn decode_answer(
    content_type: Option<String>,
    bytes: &[u8],
) -> Result<CertificateSigningRequest, ClientError> {
    let path = || CSR_PATH.to_string();
    let media = content_type.as_deref().unwrap_or(JSON);
    if media.split(';').next().map(str::trim) == Some(PROTOBUF) {
        return decode_csr(bytes).map_err(|source| ClientError::DecodeProtobuf {
            path: path(),
            source,
        });
    }
    serde_json::from_slice(bytes).map_err(|source| ClientError::Decode {
        path: path(),
        source,
    })
}

fn status_error(path: &str, status: StatusCode, body: &[u8]) -> ClientError {
    let parsed: Option<Status> = serde_json::from_slice(body).ok();
    let reason = parsed
        .as_ref()
        .and_then(|s| s.reason.clone())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
    let message = parsed.and_then(|s| s.message).unwrap_or_default();
    ClientError::Status {
        path: path.to_string(),
        code: status.as_u16(),
        reason,
        message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
    }
}

/// Longest server message kept in an error (it ends up in logs and on the terminal).
const MAX_MESSAGE_CHARS: usize = 1024;

#[cfg(test)]
mod tests;

//! Reading kubeconfig files (the bootstrap kubeconfig a node is given, the kubeconfig
//! `kubesigner bootstrap` writes) and writing the kubelet's node kubeconfig layout.
//!
//! Only the parts a client needs are read: the current context's cluster (server, CA file or
//! inline CA data, TLS server name) and user (bearer token, or client certificate and key as
//! files or inline data). Relative file paths are resolved against the kubeconfig's own
//! directory, as kubectl does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use zeroize::Zeroizing;

use super::write_private_file;

/// Largest kubeconfig accepted. One with inline certificates and a key is a few KiB; 1 MiB
/// leaves room for large CA bundles while bounding what a hostile file can make us parse.
pub const MAX_KUBECONFIG_BYTES: u64 = 1024 * 1024;

/// Errors reading a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigReadError {
    /// The file could not be read.
    #[error("cannot read kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_KUBECONFIG_BYTES`].
    #[error("kubeconfig {path} is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The YAML does not parse as a kubeconfig.
    #[error("kubeconfig {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's complaint (positions only; values are never echoed).
        source: serde_norway::Error,
    },
    /// A name the kubeconfig refers to is not defined in it.
    #[error("kubeconfig {path}: {kind} {name:?} is not defined")]
    Missing {
        /// The file.
        path: PathBuf,
        /// `context`, `cluster` or `user`.
        kind: &'static str,
        /// The name looked up (empty when `current-context` is unset).
        name: String,
    },
    /// An inline `*-data` field is not base64.
    #[error("kubeconfig {path}: {field} is not valid base64")]
    Base64 {
        /// The file.
        path: PathBuf,
        /// Which field.
        field: &'static str,
    },
    /// A client certificate is given without its key, or the other way round.
    #[error("kubeconfig {path}: client certificate and client key must be given together")]
    HalfCertificate {
        /// The file.
        path: PathBuf,
    },
    /// `insecure-skip-tls-verify: true` is refused: a node must verify the appliance.
    #[error("kubeconfig {path}: insecure-skip-tls-verify is not supported")]
    Insecure {
        /// The file.
        path: PathBuf,
    },
    /// The kubeconfig could not be rendered (a path that is not UTF-8).
    #[error("cannot render kubeconfig: {what} is not valid UTF-8")]
    NotUtf8 {
        /// Which value.
        what: &'static str,
    },
    /// Serializing the kubeconfig failed.
    #[error("cannot render kubeconfig: {0}")]
    Render(serde_norway::Error),
    /// The file could not be written.
    #[error("cannot write kubeconfig {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where bytes (a CA bundle, a certificate, a key) come from.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file (absolute, or resolved against the kubeconfig's directory).
    File(PathBuf),
    /// Inline data, already base64-decoded (zeroized on drop: it may be a key).
    Data(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for PemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemSource::File(p) => f.debug_tuple("File").field(p).finish(),
            PemSource::Data(d) => write!(f, "Data({} bytes)", d.len()),
        }
    }
}

impl PemSource {
    /// The bytes, reading the file if needed.
    pub fn load(&self) -> std::io::Result<Zeroizing<Vec<u8>>> {
        match self {
            PemSource::File(p) => std::fs::read(p).map(Zeroizing::new),
            PemSource::Data(d) => Ok(d.clone()),
        }
    }
}

/// How the client authenticates.
#[derive(Debug)]
pub enum ClientAuth {
    /// No credential in the kubeconfig.
    None,
    /// A bearer token.
    Token(SecretString),
    /// A client certificate and its private key.
    Certificate {
        /// PEM certificate (chain).
        cert: PemSource,
        /// PEM private key.
        key: PemSource,
    },
}

/// The current context of a kubeconfig, resolved to what a client needs.
#[derive(Debug)]
pub struct ClientConfig {
    /// API server URL.
    pub server: String,
    /// The CA the server's certificate must chain to (`None`: system roots, which a node
    /// talking to the appliance never uses).
    pub ca: Option<PemSource>,
    /// `tls-server-name`, when the certificate's name differs from the URL's host.
    pub tls_server_name: Option<String>,
    /// The credential.
    pub auth: ClientAuth,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    clusters: Vec<Named<RawCluster>>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    current_context: String,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    cluster: T,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: RawUser,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: RawContext,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawCluster {
    server: String,
    #[serde(default)]
    certificate_authority: Option<String>,
    #[serde(default)]
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    #[serde(default)]
    tls_server_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawUser {
    #[serde(default, deserialize_with = "secret_opt")]
    token: Option<SecretString>,
    #[serde(default)]
    client_certificate: Option<String>,
    #[serde(default)]
    client_certificate_data: Option<String>,
    #[serde(default)]
    client_key: Option<String>,
    #[serde(default, deserialize_with = "zeroizing_opt")]
    client_key_data: Option<Zeroizing<String>>,
}

#[derive(Deserialize)]
struct RawContext {
    cluster: String,
    #[serde(default)]
    user: String,
}

fn secret_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

fn zeroizing_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Zeroizing::new))
}

/// Reads `path` and resolves its current context.
pub fn read_client_config(path: &Path) -> Result<ClientConfig, KubeconfigReadError> {
    let text = read_bounded(path)?;
    parse_client_config(&text, path)
}

fn read_bounded(path: &Path) -> Result<Zeroizing<String>, KubeconfigReadError> {
    use std::io::Read;
    let read_err = |source| KubeconfigReadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KUBECONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_KUBECONFIG_BYTES {
        return Err(KubeconfigReadError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_KUBECONFIG_BYTES,
        });
    }
    Ok(text)
}

/// Parses kubeconfig text; `path` names the file (relative paths are resolved against its
/// directory).
pub fn parse_client_config(text: &str, path: &Path) -> Result<ClientConfig, KubeconfigReadError> {
    let raw: RawConfig =
        serde_norway::from_str(text).map_err(|source| KubeconfigReadError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    let missing = |kind, name: &str| KubeconfigReadError::Missing {
        path: path.to_path_buf(),
        kind,
        name: name.to_string(),
    };
    let ctx = raw
        .contexts
        .iter()
        .find(|c| c.name == raw.current_context)
        .ok_or_else(|| missing("context", &raw.current_context))?;
    let cluster = raw
        .clusters
        .into_iter()
        .find(|c| c.name == ctx.context.cluster)
        .ok_or_else(|| missing("cluster", &ctx.context.cluster))?
        .cluster;
    let user = if ctx.context.user.is_empty() {
        RawUser::default()
    } else {
        raw.users
            .into_iter()
            .find(|u| u.name == ctx.context.user)
            .ok_or_else(|| missing("user", &ctx.context.user))?
            .user
    };
    if cluster.insecure_skip_tls_verify {
        return Err(KubeconfigReadError::Insecure {
            path: path.to_path_buf(),
        });
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let ca = source(
        base,
        cluster.certificate_authority.as_deref(),
        cluster.certificate_authority_data.as_deref(),
        "certificate-authority-data",
        path,
    )?;
    let cert = source(
        base,
        user.client_certificate.as_deref(),
        user.client_certificate_data.as_deref(),
        "client-certificate-data",
        path,
    )?;
    let key = source(
        base,
        user.client_key.as_deref(),
        user.client_key_data.as_deref().map(String::as_str),
        "client-key-data",
        path,
    )?;
    let auth = match (cert, key, user.token) {
        (Some(cert), Some(key), _) => ClientAuth::Certificate { cert, key },
        (None, None, Some(token)) => ClientAuth::Token(token),
        (None, None, None) => ClientAuth::None,
        _ => {
            return Err(KubeconfigReadError::HalfCertificate {
                path: path.to_path_buf(),
            });
        }
    };
    Ok(ClientConfig {
        server: cluster.server,
        ca,
        tls_server_name: cluster.tls_server_name,
        auth,
    })
}

/// Inline data wins over a file, as in client-go.
fn source(
    base: &Path,
    file: Option<&str>,
    data: Option<&str>,
    field: &'static str,
    path: &Path,
) -> Result<Option<PemSource>, KubeconfigReadError> {
    if let Some(data) = data.filter(|d| !d.is_empty()) {
        let bytes = STANDARD
            .decode(data.trim())
            .map_err(|_| KubeconfigReadError::Base64 {
                path: path.to_path_buf(),
                field,
            })?;
        return Ok(Some(PemSource::Data(Zeroizing::new(bytes))));
    }
    Ok(file
        .filter(|f| !f.is_empty())
        .map(|f| PemSource::File(base.join(f))))
}

/// The kubeconfig a kubelet writes after bootstrap (reference §4.2): cluster `default-cluster`,
/// user `default-auth` whose `client-certificate` and `client-key` both name the cert dir's
/// `kubelet-client-current.pem`, context `default-context` in namespace `default`.
pub struct NodeKubeconfig {
    /// API server URL.
    pub server: String,
    /// CA file path or inline CA data.
    pub ca: PemSource,
    /// `tls-server-name`, copied from the bootstrap kubeconfig.
    pub tls_server_name: Option<String>,
    /// The `kubelet-client-current.pem` path (certificate followed by key).
    pub cert_and_key_file: PathBuf,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutConfig<'a> {
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<OutNamed<'a, OutCluster<'a>>>,
    contexts: Vec<OutContextEntry<'a>>,
    current_context: &'a str,
    users: Vec<OutUserEntry<'a>>,
    preferences: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct OutNamed<'a, T> {
    cluster: T,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutCluster<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authority: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<String>,
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<&'a str>,
}

#[derive(Serialize)]
struct OutContextEntry<'a> {
    context: OutContext<'a>,
    name: &'a str,
}

#[derive(Serialize)]
struct OutContext<'a> {
    cluster: &'a str,
    namespace: &'a str,
    user: &'a str,
}

#[derive(Serialize)]
struct OutUserEntry<'a> {
    name: &'a str,
    user: OutUser<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutUser<'a> {
    client_certificate: &'a str,
    client_key: &'a str,
}

impl NodeKubeconfig {
    /// Renders the YAML text.
    pub fn render(&self) -> Result<String, KubeconfigReadError> {
        let file = self
            .cert_and_key_file
            .to_str()
            .ok_or(KubeconfigReadError::NotUtf8 { what: "cert file" })?;
        let (ca_file, ca_data) = match &self.ca {
            PemSource::File(p) => (
                Some(
                    p.to_str()
                        .ok_or(KubeconfigReadError::NotUtf8 { what: "CA file" })?,
                ),
                None,
            ),
            PemSource::Data(d) => (None, Some(STANDARD.encode(d.as_slice()))),
        };
        let out = OutConfig {
            api_version: "v1",
            kind: "Config",
            clusters: vec![OutNamed {
                cluster: OutCluster {
                    certificate_authority: ca_file,
                    certificate_authority_data: ca_data,
                    server: &self.server,
                    tls_server_name: self.tls_server_name.as_deref(),
                },
                name: "default-cluster",
            }],
            contexts: vec![OutContextEntry {
                context: OutContext {
                    cluster: "default-cluster",
                    namespace: "default",
                    user: "default-auth",
                },
                name: "default-context",
            }],
            current_context: "default-context",
            users: vec![OutUserEntry {
                name: "default-auth",
                user: OutUser {
                    client_certificate: file,
                    client_key: file,
                },
            }],
            preferences: BTreeMap::new(),
        };
        serde_norway::to_string(&out).map_err(KubeconfigReadError::Render)
    }

    /// Writes the kubeconfig atomically (temporary file, fsync, rename), mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), KubeconfigReadError> {
        let text = self.render()?;
        write_private_file(path, text.as_bytes()).map_err(|source| KubeconfigReadError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;

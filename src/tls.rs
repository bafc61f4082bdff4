//! The HTTPS server's TLS configuration (SECURITY.md, mitigations): TLS 1.2 and 1.3 only, AEAD
//! suites only (ECDHE for 1.2), server cipher preference, ALPN h2 + http/1.1. Client certificates are
//! optional (so token authentication works) but a presented one must chain to the client CA
//! roots and carry the clientAuth EKU (rustls' `WebPkiClientVerifier`). Crypto provider:
//! aws-lc-rs, chosen explicitly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::{self, cipher_suite};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN protocols offered, in server preference order.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Errors building the TLS configuration or reading its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the configuration (bad key, key not matching the certificate, ...).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A client CA certificate is not a usable trust anchor.
    #[error("client CA certificate {index} is not a usable trust anchor: {source}")]
    ClientCa {
        /// Position in the list given.
        index: usize,
        /// Why.
        source: rustls::Error,
    },
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// No server certificate was given.
    #[error("empty server certificate chain")]
    EmptyChain,
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read PEM file {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// A PEM file holds no certificate.
    #[error("no certificate in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
}

/// The crypto provider: aws-lc-rs with AEAD suites only, ECDHE key exchange only.
pub fn crypto_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..aws_lc_rs::default_provider()
    }
}

/// The client certificate verifier over `roots` (none: certificates are not requested).
pub fn client_verifier(
    roots: Vec<CertificateDer<'static>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    if roots.is_empty() {
        // Nothing could chain: do not ask for certificates at all; tokens still work.
        tracing::warn!("no client CA configured: client certificates are not requested");
        return Ok(WebPkiClientVerifier::no_client_auth());
    }
    let mut store = RootCertStore::empty();
    for (index, root) in roots.into_iter().enumerate() {
        store
            .add(root)
            .map_err(|source| TlsError::ClientCa { index, source })?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
            .allow_unauthenticated()
            .build()?;
    Ok(verifier)
}

/// The server configuration. `cert_chain` is the serving certificate then its intermediates;
/// `client_ca_roots` the trust anchors for client certificates (the appliance CA plus the
/// configured `client_ca_files`).
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    if cert_chain.is_empty() {
        return Err(TlsError::EmptyChain);
    }
    let provider = Arc::new(crypto_provider());
    let verifier = client_verifier(client_ca_roots, &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert_chain, key)?;
    config.ignore_client_order = true;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// As [`server_config`], with a prebuilt client certificate verifier (e.g. one that a reload
/// swaps, `reload::ReloadableClientVerifier`).
pub fn server_config_verified(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    if cert_chain.is_empty() {
        return Err(TlsError::EmptyChain);
    }
    let provider = Arc::new(crypto_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert_chain, key)?;
    config.ignore_client_order = true;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// As [`server_config_with_resolver`], with a prebuilt client certificate verifier.
pub fn server_config_with_resolver_verified(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(crypto_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.ignore_client_order = true;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// As [`server_config`], with the serving certificate from `resolver` (renewed in place).
pub fn server_config_with_resolver(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    client_ca_roots: Vec<CertificateDer<'static>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(crypto_provider());
    let verifier = client_verifier(client_ca_roots, &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(resolver);
    config.ignore_client_order = true;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Reads every certificate of a PEM file (e.g. a serving chain or a client CA bundle).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |source| TlsError::Pem {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Pem {
        path: path.to_owned(),
        source,
    })
}

/// The client-certificate trust anchors: the appliance CA certificate (the first certificate of
/// `[ca] cert_file`, which issues node certificates) plus every certificate of the configured
/// `[auth] client_ca_files` (the seeds' `--client-ca-file`).
pub fn client_ca_roots(
    appliance_ca: &CertificateDer<'static>,
    client_ca_files: &[PathBuf],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut roots = vec![appliance_ca.clone()];
    for path in client_ca_files {
        roots.extend(load_certs(path)?);
    }
    Ok(roots)
}

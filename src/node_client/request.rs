//! One certificate request, end to end: build the CSR object, create it (reusing an existing
//! `node-csr-` CSR on 409 after the kubelet's `ensureCompatible` checks), wait for the
//! certificate, and check it certifies the key.

use std::time::{Duration, SystemTime};

use der::{DecodePem, Encode};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use x509_cert::request::CertReq;

use super::certdir::{certifies, parse_chain};
use super::client::{ApiClient, ClientError};
use super::csr::{CertKind, CsrBuildError, NODES_GROUP, build_csr, digested_name, node_subject};
use super::key::{KeyError, NodeKey};
use super::name::{BadCsrName, CsrName};
use super::node::NodeName;
use super::wait::{WaitError, wait_for_certificate};

/// How a CSR is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `node-csr-<digest>` (the bootstrap path; a restart re-finds its CSR).
    Digest,
    /// `generateName: csr-` (the rotation path).
    Generate,
}

/// Errors of one request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Building the CSR failed.
    #[error(transparent)]
    Build(#[from] CsrBuildError),
    /// The key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The server's create answer failed.
    #[error("creating the certificate signing request failed: {0}")]
    Create(ClientError),
    /// The existing CSR of the same name cannot be reused.
    #[error("existing certificate signing request {name} cannot be reused: {why}")]
    Incompatible {
        /// CSR name.
        name: String,
        /// Which check failed.
        why: &'static str,
    },
    /// The server gave back a name outside the accepted alphabet.
    #[error(transparent)]
    Name(#[from] BadCsrName),
    /// Waiting ended without a certificate.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The issued certificate is not usable with the key.
    #[error("the issued certificate for {name} does not certify this node's key")]
    WrongCertificate {
        /// CSR name.
        name: String,
    },
}

impl RequestError {
    /// Whether this error ends the attempt because the request was refused (Denied, Failed,
    /// credential refused) rather than for a transient reason.
    pub fn is_refusal(&self) -> bool {
        match self {
            RequestError::Wait(
                WaitError::Denied { .. } | WaitError::Failed { .. } | WaitError::Refused(_),
            ) => true,
            RequestError::Create(e) => super::wait::is_refusal(e),
            _ => false,
        }
    }
}

/// Requests a certificate of `kind` for `key` and waits up to `timeout` for it.
/// Returns the PEM chain.
pub async fn request_certificate(
    client: &ApiClient,
    key: &NodeKey,
    node: &NodeName,
    kind: &CertKind,
    naming: Naming,
    timeout: Duration,
) -> Result<String, RequestError> {
    let pem = build_csr(key, node, kind)?;
    let mut object = CertificateSigningRequest::default();
    match naming {
        Naming::Digest => {
            let name = digested_name(
                &key.spki_der()?,
                &node.user_name(),
                &[NODES_GROUP],
                &kind.usages(),
            );
            object.metadata.name = Some(name);
        }
        Naming::Generate => object.metadata.generate_name = Some("csr-".into()),
    }
    object.spec = CertificateSigningRequestSpec {
        request: ByteString(pem.into_bytes()),
        signer_name: kind.signer_name().to_string(),
        usages: Some(kind.usages().iter().map(|u| u.to_string()).collect()),
        ..Default::default()
    };
    let (name, uid) = match client.create_csr(&object).await {
        Ok(created) => (
            CsrName::parse(created.metadata.name.as_deref().unwrap_or_default())?,
            created.metadata.uid,
        ),
        Err(e) if e.code() == Some(409) && naming == Naming::Digest => {
            let name = CsrName::parse(object.metadata.name.as_deref().unwrap_or_default())?;
            tracing::info!(csr = %name, "certificate signing request exists; reusing it");
            let existing = client.get_csr(&name).await.map_err(RequestError::Create)?;
            ensure_compatible(&existing, &object, key, node, &name)?;
            (name, existing.metadata.uid)
        }
        Err(e) => return Err(RequestError::Create(e)),
    };
    tracing::info!(csr = %name, signer = kind.signer_name(), body = client.body_encoding(), "certificate signing request created");
    let cert = wait_for_certificate(client, &name, uid, timeout).await?;
    let leaf_ok = parse_chain(&cert)
        .first()
        .map(|leaf| certifies(leaf, key).unwrap_or(false))
        .unwrap_or(false);
    if !leaf_ok {
        return Err(RequestError::WrongCertificate {
            name: name.to_string(),
        });
    }
    Ok(cert)
}

/// The kubelet's `ensureCompatible`: same subject and signer, the stored request is for this
/// key, and an issued certificate (if any) has not expired.
fn ensure_compatible(
    existing: &CertificateSigningRequest,
    ours: &CertificateSigningRequest,
    key: &NodeKey,
    node: &NodeName,
    name: &CsrName,
) -> Result<(), RequestError> {
    let bad = |why| RequestError::Incompatible {
        name: name.to_string(),
        why,
    };
    if existing.spec.signer_name != ours.spec.signer_name {
        return Err(bad("different signer"));
    }
    let req = CertReq::from_pem(&existing.spec.request.0).map_err(|_| bad("unparsable request"))?;
    let subject = node_subject(node).map_err(|_| bad("subject"))?;
    if req.info.subject != subject {
        return Err(bad("different subject"));
    }
    let spki = req
        .info
        .public_key
        .to_der()
        .map_err(|_| bad("public key"))?;
    if spki != key.spki_der()? {
        return Err(bad("different key"));
    }
    let cert = existing
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref());
    if let Some(cert) = cert.filter(|c| !c.0.is_empty()) {
        let chain = parse_chain(&String::from_utf8_lossy(&cert.0));
        let expired = chain.first().is_none_or(|leaf| {
            leaf.tbs_certificate().validity().not_after.to_system_time() <= SystemTime::now()
        });
        if expired {
            return Err(bad("its certificate has expired"));
        }
    }
    Ok(())
}

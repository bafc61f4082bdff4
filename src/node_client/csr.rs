//! The certificate request a kubelet sends: subject `CN=system:node:<n>, O=system:nodes`,
//! no SANs for the client certificate, DNS/IP SANs for the serving certificate; the
//! signer name and usages that go with it; and the kubelet's deterministic CSR name.

use std::net::IpAddr;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use const_oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, SECP_256_R_1};
use der::asn1::{BitString, Ia5String, OctetString};
use der::pem::LineEnding;
use der::{Any, Encode, EncodePem};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attributes;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

use super::key::{KeyError, NodeKey};
use super::node::NodeName;

/// The only organisation a kubelet certificate may carry (reference §2.1).
pub const NODES_GROUP: &str = "system:nodes";
/// Signer of kubelet client certificates.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Signer of kubelet serving certificates.
pub const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// Which certificate is requested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertKind {
    /// The kubelet client certificate (no SANs).
    Client,
    /// The kubelet serving certificate with these SANs.
    Serving {
        /// DNS names.
        dns: Vec<String>,
        /// IP addresses.
        ips: Vec<IpAddr>,
    },
}

impl CertKind {
    /// The signer name.
    pub fn signer_name(&self) -> &'static str {
        match self {
            CertKind::Client => CLIENT_SIGNER,
            CertKind::Serving { .. } => SERVING_SIGNER,
        }
    }

    /// Usages for a non-RSA key (reference §4.1 / §4.5): no key encipherment.
    pub fn usages(&self) -> [&'static str; 2] {
        match self {
            CertKind::Client => ["digital signature", "client auth"],
            CertKind::Serving { .. } => ["digital signature", "server auth"],
        }
    }

    /// File name prefix in the cert dir (`kubelet-client` / `kubelet-server`).
    pub fn file_prefix(&self) -> &'static str {
        match self {
            CertKind::Client => "kubelet-client",
            CertKind::Serving { .. } => "kubelet-server",
        }
    }
}

/// Errors building a request.
#[derive(Debug, thiserror::Error)]
pub enum CsrBuildError {
    /// The key could not sign or be encoded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// DER encoding failed (a DNS name that is not IA5, for example).
    #[error("cannot encode the certificate request: {0}")]
    Der(#[from] der::Error),
}

/// The subject `CN=system:node:<n>, O=system:nodes` (O first in DER order, as Go writes it).
pub fn node_subject(node: &NodeName) -> Result<Name, der::Error> {
    // RFC 4514 strings list RDNs last-first; a node name holds no characters needing escapes.
    Name::from_str(&format!("CN={},O={NODES_GROUP}", node.user_name()))
}

/// The `SubjectPublicKeyInfo` of `key`.
pub fn spki(key: &NodeKey) -> Result<SubjectPublicKeyInfoOwned, CsrBuildError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&SECP_256_R_1)?),
        },
        subject_public_key: BitString::from_bytes(key.public_point())?,
    })
}

/// Builds and signs the PKCS#10 request; returns its PEM text.
pub fn build_csr(key: &NodeKey, node: &NodeName, kind: &CertKind) -> Result<String, CsrBuildError> {
    let mut attributes = Attributes::new();
    if let CertKind::Serving { dns, ips } = kind {
        let mut names = Vec::with_capacity(dns.len() + ips.len());
        for d in dns {
            names.push(GeneralName::DnsName(Ia5String::new(d)?));
        }
        for ip in ips {
            names.push(GeneralName::from(*ip));
        }
        let san = Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
            critical: false,
            extn_value: OctetString::new(SubjectAltName(names).to_der()?)?,
        };
        attributes.insert(ExtensionReq(vec![san]).try_into()?)?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: node_subject(node)?,
        public_key: spki(key)?,
        attributes,
    };
    let signature = key.sign(&info.to_der()?)?;
    let req = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_256,
            parameters: None,
        },
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(req.to_pem(LineEnding::LF)?)
}

/// The kubelet's bootstrap CSR name (reference §4.2, `digestedName` in `bootstrap.go`):
/// SHA-512/256 over `b64url(SPKI DER)|b64url(CN)|b64url(each O)|b64url(each usage)|`, every
/// item base64url without padding followed by `|`, named `node-csr-<b64url(sum)>`.
pub fn digested_name(spki_der: &[u8], common_name: &str, orgs: &[&str], usages: &[&str]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512_256);
    let mut write = |data: &[u8]| {
        ctx.update(URL_SAFE_NO_PAD.encode(data).as_bytes());
        ctx.update(b"|");
    };
    write(spki_der);
    write(common_name.as_bytes());
    for o in orgs {
        write(o.as_bytes());
    }
    for u in usages {
        write(u.as_bytes());
    }
    format!("node-csr-{}", URL_SAFE_NO_PAD.encode(ctx.finish().as_ref()))
}

#[cfg(test)]
mod tests;

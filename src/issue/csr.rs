//! `spec.request` → PEM `CERTIFICATE REQUEST` → PKCS#10, with named bounds, then the key rules
//! and the proof of possession.

use std::net::IpAddr;

use der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
use x509_cert::request::CertReq;

use super::error::{CsrRejection, RequestError, Rule, SignerValidationFailure};
use super::key::{SubjectKey, verify_proof_of_possession};
use super::names::NodeName;
use super::oids;
use super::subject::Subject;

/// Named bound: largest `spec.request` (PEM bytes). A kubelet P-256 CSR is ≈ 500 bytes; an
/// RSA-8192 CSR with a few SANs stays under 4 KiB. 16 KiB leaves room and keeps parsing cheap.
pub const MAX_CSR_PEM_BYTES: usize = 16 * 1024;
/// Named bound: subject RDNs (kubelet subjects have 2; generous for `kube-apiserver-client`).
pub const MAX_SUBJECT_RDNS: usize = 16;
/// Named bound: PKCS#10 attributes (Go/openssl CSRs carry at most an extensionRequest and a
/// challengePassword).
pub const MAX_ATTRIBUTES: usize = 8;
/// Named bound: requested extensions (all but SAN and basicConstraints are dropped anyway).
pub const MAX_REQUESTED_EXTENSIONS: usize = 16;
/// Named bound: SANs in one CSR (a kubelet asks for its hostname + node addresses; 64 covers
/// multi-homed dual-stack nodes).
pub const MAX_SANS: usize = 64;

/// A subject alternative name from the CSR, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// dNSName.
    Dns(String),
    /// iPAddress (4 or 16 bytes).
    Ip(IpAddr),
    /// rfc822Name.
    Email(String),
    /// uniformResourceIdentifier.
    Uri(String),
    /// Any other GeneralName form (otherName, directoryName, ...): never allowed.
    Other,
}

impl San {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            San::Dns(d) => format!("DNS:{d}"),
            San::Ip(ip) => format!("IP:{ip}"),
            San::Email(e) => format!("email:{e}"),
            San::Uri(u) => format!("URI:{u}"),
            San::Other => "other-name".to_owned(),
        }
    }
}

/// `spec.request`, parsed once: exactly one PEM `CERTIFICATE REQUEST` block (whitespace around
/// it only), the PKCS#10 structure within the named bounds, the subject decoded into typed
/// attributes, the requested SANs and basicConstraints. Cheap (no signature check): the API
/// derives authorization, limits, node state, the store's index and the audit record from
/// this value, and [`CsrRequest::verify`] turns the same value into the [`ParsedCsr`] the
/// profiles check and the builder signs. Nothing else in the appliance reads `spec.request`.
#[derive(Debug, Clone)]
pub struct CsrRequest {
    subject: Subject,
    public_key: spki::SubjectPublicKeyInfoOwned,
    sans: Vec<San>,
    requests_ca: bool,
    /// The DER of `CertificationRequestInfo`, the signed bytes (proof of possession).
    info_der: Vec<u8>,
    algorithm: spki::AlgorithmIdentifierOwned,
    signature: der::asn1::BitString,
}

impl CsrRequest {
    /// The one parser of `spec.request`.
    pub fn parse(pem: &[u8]) -> Result<CsrRequest, RequestError> {
        let req = decode(pem)?;
        let extensions = requested_extensions(&req)?;
        let mut sans = Vec::new();
        let mut requests_ca = false;
        for ext in &extensions {
            if ext.extn_id == oids::SUBJECT_ALT_NAME {
                sans.extend(parse_sans(ext)?);
            } else if ext.extn_id == oids::BASIC_CONSTRAINTS {
                let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| RequestError::Der(e.to_string()))?;
                requests_ca |= bc.ca;
            }
        }
        bound("subject alternative names", sans.len(), MAX_SANS)?;
        let info_der = req
            .info
            .to_der()
            .map_err(|e| RequestError::Der(e.to_string()))?;
        Ok(CsrRequest {
            subject: Subject::decode(req.info.subject),
            public_key: req.info.public_key,
            sans,
            requests_ca,
            info_der,
            algorithm: req.algorithm,
            signature: req.signature,
        })
    }

    /// The requested subject, decoded.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The requested SANs, typed.
    pub fn sans(&self) -> &[San] {
        &self.sans
    }

    /// The subject public key.
    pub fn public_key(&self) -> &spki::SubjectPublicKeyInfoOwned {
        &self.public_key
    }

    /// The subject CN when there is exactly one, decoded whatever its string type.
    pub fn common_name(&self) -> Option<&str> {
        self.subject.common_name()
    }

    /// The node the subject names (`CN=system:node:<DNS-1123 name>`), if any.
    pub fn node_name(&self) -> Option<NodeName> {
        self.common_name().and_then(NodeName::from_common_name)
    }

    /// The requested subject (RFC 4514) and SANs, for the audit record.
    pub fn describe(&self) -> (String, Vec<String>) {
        let sans = self.sans.iter().take(MAX_SANS).map(San::describe).collect();
        (self.subject.describe(), sans)
    }

    /// Key rules, signature algorithm and proof of possession, on this same parse.
    pub fn verify(self) -> Result<ParsedCsr, CsrRejection> {
        let key = SubjectKey::classify(&self.public_key)?;
        let signature = self.signature.as_bytes().ok_or_else(|| {
            SignerValidationFailure::new(
                Rule::ProofOfPossession,
                "signature with unused bits",
                "an octet-aligned signature",
            )
        })?;
        verify_proof_of_possession(
            key,
            &self.public_key,
            &self.algorithm,
            &self.info_der,
            signature,
        )?;
        Ok(ParsedCsr {
            subject: self.subject,
            public_key: self.public_key,
            key,
            sans: self.sans,
            requests_ca: self.requests_ca,
        })
    }
}

/// A parsed CSR whose self-signature verified and whose key passed the key rules.
#[derive(Debug, Clone)]
pub struct ParsedCsr {
    /// The subject, as requested (attribute order kept), with its decoded attributes.
    pub subject: Subject,
    /// The subject public key.
    pub public_key: spki::SubjectPublicKeyInfoOwned,
    /// The key kind.
    pub key: SubjectKey,
    /// The SANs requested (typed).
    pub sans: Vec<San>,
    /// The CSR asked for basicConstraints CA:TRUE.
    pub requests_ca: bool,
}

/// Parses and checks a CSR: [`CsrRequest::parse`] then [`CsrRequest::verify`].
pub fn parse_csr(pem: &[u8]) -> Result<ParsedCsr, CsrRejection> {
    CsrRequest::parse(pem)?.verify()
}

impl ParsedCsr {
    /// The requested subject (RFC 4514) and SANs, for the audit record.
    pub fn describe(&self) -> (String, Vec<String>) {
        let sans = self.sans.iter().take(MAX_SANS).map(San::describe).collect();
        (self.subject.describe(), sans)
    }
}

fn bound(what: &'static str, count: usize, max: usize) -> Result<(), RequestError> {
    if count > max {
        return Err(RequestError::TooMany { what, count, max });
    }
    Ok(())
}

/// The only PEM label accepted (as kube-apiserver's `ParseCSR`; `NEW CERTIFICATE REQUEST` is
/// refused).
const LABEL: &str = "CERTIFICATE REQUEST";
const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE REQUEST-----";
const END: &[u8] = b"-----END CERTIFICATE REQUEST-----";

/// The exact framing: one block, only whitespace around it. Stricter than upstream, which
/// reads the first block and ignores the rest: a second block, a preamble or trailing text is
/// where two readers of the same bytes could see two different requests.
fn framed(pem: &[u8]) -> Result<&[u8], RequestError> {
    let block = pem.trim_ascii();
    let count = |needle: &[u8]| block.windows(needle.len()).filter(|w| *w == needle).count();
    if count(b"-----BEGIN") == 0 {
        return Err(RequestError::NotPem);
    }
    if count(b"-----BEGIN") > 1 || count(b"-----END") > 1 {
        return Err(RequestError::Framing("more than one PEM block"));
    }
    if !block.starts_with(b"-----BEGIN") {
        return Err(RequestError::Framing("text before the PEM block"));
    }
    if !block.starts_with(BEGIN) {
        return Err(RequestError::NotPem);
    }
    if !block.ends_with(END) {
        return Err(RequestError::Framing(
            "the PEM block does not end with -----END CERTIFICATE REQUEST-----",
        ));
    }
    Ok(block)
}

/// PEM → DER → `CertReq`, with the size and count bounds.
fn decode(pem: &[u8]) -> Result<CertReq, RequestError> {
    if pem.len() > MAX_CSR_PEM_BYTES {
        return Err(RequestError::TooLarge {
            len: pem.len(),
            max: MAX_CSR_PEM_BYTES,
        });
    }
    let (label, der) = der::pem::decode_vec(framed(pem)?).map_err(|_| RequestError::NotPem)?;
    if label != LABEL {
        return Err(RequestError::NotPem);
    }
    let req = CertReq::from_der(&der).map_err(|e| RequestError::Der(e.to_string()))?;
    bound("subject RDNs", req.info.subject.len(), MAX_SUBJECT_RDNS)?;
    bound("attributes", req.info.attributes.len(), MAX_ATTRIBUTES)?;
    Ok(req)
}

fn requested_extensions(req: &CertReq) -> Result<Vec<Extension>, RequestError> {
    let mut out = Vec::new();
    for attr in req.info.attributes.iter() {
        if attr.oid != oids::EXTENSION_REQUEST {
            continue;
        }
        for value in attr.values.iter() {
            let exts = value
                .decode_as::<Vec<Extension>>()
                .map_err(|e| RequestError::Der(e.to_string()))?;
            out.extend(exts);
            bound("requested extensions", out.len(), MAX_REQUESTED_EXTENSIONS)?;
        }
    }
    Ok(out)
}

fn parse_sans(ext: &Extension) -> Result<Vec<San>, RequestError> {
    let names = SubjectAltName::from_der(ext.extn_value.as_bytes())
        .map_err(|e| RequestError::Der(e.to_string()))?;
    bound("subject alternative names", names.0.len(), MAX_SANS)?;
    names.0.iter().map(typed_san).collect()
}

fn typed_san(name: &GeneralName) -> Result<San, RequestError> {
    Ok(match name {
        GeneralName::DnsName(d) => San::Dns(d.to_string()),
        GeneralName::Rfc822Name(e) => San::Email(e.to_string()),
        GeneralName::UniformResourceIdentifier(u) => San::Uri(u.to_string()),
        GeneralName::IpAddress(ip) => {
            let b = ip.as_bytes();
            if let Ok(v4) = <[u8; 4]>::try_from(b) {
                San::Ip(IpAddr::from(v4))
            } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
                San::Ip(IpAddr::from(v6))
            } else {
                return Err(RequestError::Der(format!(
                    "iPAddress SAN of {} bytes",
                    b.len()
                )));
            }
        }
        _ => San::Other,
    })
}

#[cfg(test)]
mod tests;

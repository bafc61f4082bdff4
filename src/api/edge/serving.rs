//! The appliance's own serving certificate when the operator gives none: a P-256 key generated
//! in software at start (held in memory only) and a certificate for it issued by the appliance
//! CA (serverAuth, SANs `localhost`, `127.0.0.1`, `::1`, the listen address and the configured
//! names).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use der::asn1::{Any, BitString};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::issue::ca::parse_subject;
use crate::issue::{
    IssueError, Issuer, ParsedCsr, Requester, San, SignerName, SubjectIdentity, SubjectKey, Usage,
    UsageSet, ValidatedCsr, oids,
};

/// The serving certificate's CN.
pub const SERVING_COMMON_NAME: &str = "kubesigner";

/// A generated serving chain and its key.
pub struct ServingIdentity {
    /// Leaf then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// The key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
    /// When the leaf expires.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for ServingIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingIdentity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn sans(listen: SocketAddr, names: &[String]) -> Vec<San> {
    let mut out = vec![
        San::Dns("localhost".to_owned()),
        San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        out.push(San::Ip(listen.ip()));
    }
    for n in names {
        out.push(match n.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(n.clone()),
        });
    }
    out
}

/// Issues the serving certificate through `issuer` (one token signature).
pub fn serving_identity(
    issuer: &Issuer,
    listen: SocketAddr,
    names: &[String],
    ttl: Duration,
) -> Result<ServingIdentity, IssueError> {
    let build = |e: &dyn std::fmt::Display| IssueError::Build(e.to_string());
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| IssueError::Random)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|_| IssueError::Random)?;
    let public_key = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oids::EC_PUBLIC_KEY,
            parameters: Some(Any::from(&oids::SECP256R1)),
        },
        subject_public_key: BitString::from_bytes(pair.public_key().as_ref())
            .map_err(|e| build(&e))?,
    };
    let csr = ValidatedCsr {
        signer: SignerName::KubeletServing,
        csr: ParsedCsr {
            subject: crate::issue::Subject::decode(
                parse_subject(&format!("CN={SERVING_COMMON_NAME}")).map_err(|e| build(&e))?,
            ),
            public_key,
            key: SubjectKey::EcP256,
            sans: sans(listen, names),
            requests_ca: false,
        },
        usages: UsageSet::of(&[Usage::DigitalSignature, Usage::ServerAuth]),
        requested_ttl: Some(ttl),
        identity: SubjectIdentity::Client {
            common_name: SERVING_COMMON_NAME.to_owned(),
        },
        requester: Requester::default(),
    };
    let issued = issuer.issue(&csr, SystemTime::now())?;
    let chain = CertificateDer::pem_slice_iter(issued.pem_chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| build(&e))?;
    Ok(ServingIdentity {
        chain,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec())),
        not_after: issued.not_after,
    })
}

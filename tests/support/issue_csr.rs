//! Test CSRs: built with the x509-cert RequestBuilder over software keys, or with the
//! `openssl` command for the shapes RequestBuilder will not make (SHA-1, PSS, odd curves).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use der::asn1::{Any, BitString, Ia5String, SetOfVec};
use der::{Decode, Encode, EncodePem, pem::LineEnding};
use kubesigner::signer::{KeyRef, KeySignature, SignKey};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::builder::Builder;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, RequestBuilder, Version};

/// A SAN for test CSRs.
#[derive(Debug, Clone)]
pub enum TSan {
    /// DNS.
    Dns(&'static str),
    /// IP.
    Ip(&'static str),
    /// email.
    Email(&'static str),
    /// URI.
    Uri(&'static str),
}

/// Extra extensions a test CSR may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TExt {
    /// basicConstraints CA:TRUE.
    CaTrue,
    /// keyUsage keyCertSign (dropped by the issuer).
    KeyUsageCertSign,
}

/// Builds a PEM CSR signed by `key`.
pub fn csr(key: &dyn SignKey, subject: &str, sans: &[TSan], exts: &[TExt]) -> Vec<u8> {
    let name = Name::from_str(subject).unwrap();
    let mut b = RequestBuilder::new(name).unwrap();
    if !sans.is_empty() {
        let names = sans
            .iter()
            .map(|s| match s {
                TSan::Dns(d) => GeneralName::DnsName(Ia5String::new(d).unwrap()),
                TSan::Ip(i) => GeneralName::from(i.parse::<IpAddr>().unwrap()),
                TSan::Email(e) => GeneralName::Rfc822Name(Ia5String::new(e).unwrap()),
                TSan::Uri(u) => GeneralName::UniformResourceIdentifier(Ia5String::new(u).unwrap()),
            })
            .collect();
        b.add_extension(&SubjectAltName(names)).unwrap();
    }
    for e in exts {
        match e {
            TExt::CaTrue => b
                .add_extension(&BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                })
                .unwrap(),
            TExt::KeyUsageCertSign => b
                .add_extension(&KeyUsage(KeyUsages::KeyCertSign.into()))
                .unwrap(),
        }
    }
    let req: CertReq = b.build::<_, KeySignature>(&KeyRef(key)).unwrap();
    req.to_pem(LineEnding::LF).unwrap().into_bytes()
}

/// Flips one bit in the CSR's signature.
pub fn tamper(pem: &[u8]) -> Vec<u8> {
    let (_, der) = der::pem::decode_vec(pem).unwrap();
    let mut req = CertReq::from_der(&der).unwrap();
    let mut sig = req.signature.raw_bytes().to_vec();
    let last = sig.len() - 2;
    sig[last] ^= 0x01;
    req.signature = BitString::from_bytes(&sig).unwrap();
    req.to_pem(LineEnding::LF).unwrap().into_bytes()
}

/// A CSR claiming an RSA key of `bits` bits (random modulus, garbage signature): the key rule
/// must refuse it before any signature work.
pub fn fake_rsa_csr(bits: usize, subject: &str) -> Vec<u8> {
    let mut modulus = vec![0xA5u8; bits / 8];
    modulus[0] = 0xC1;
    let n = der::asn1::Uint::new(&modulus).unwrap();
    let e = der::asn1::Uint::new(&[1, 0, 1]).unwrap();
    let pk = pkcs1::RsaPublicKey {
        modulus: n,
        public_exponent: e,
    }
    .to_der()
    .unwrap();
    let info = CertReqInfo {
        version: Version::V1,
        subject: Name::from_str(subject).unwrap(),
        public_key: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
                parameters: Some(Any::null()),
            },
            subject_public_key: BitString::from_bytes(&pk).unwrap(),
        },
        attributes: SetOfVec::new(),
    };
    let req = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
            parameters: Some(Any::null()),
        },
        signature: BitString::from_bytes(&vec![0x42; bits / 8]).unwrap(),
    };
    req.to_pem(LineEnding::LF).unwrap().into_bytes()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl genpkey` with the given arguments into `dir/name.pem`.
pub fn openssl_key(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&path));
    path
}

/// A DSA key (parameters first).
pub fn openssl_dsa_key(dir: &Path) -> std::path::PathBuf {
    let params = dir.join("dsaparams.pem");
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-genparam",
            "-algorithm",
            "DSA",
            "-pkeyopt",
            "dsa_paramgen_bits:1024",
            "-out",
        ])
        .arg(&params));
    let path = dir.join("dsa.pem");
    run(Command::new("openssl")
        .arg("genpkey")
        .arg("-paramfile")
        .arg(&params)
        .arg("-out")
        .arg(&path));
    path
}

/// `openssl req -new` with an `/O=.../CN=...` subject and extra arguments (digest, sigopts).
pub fn openssl_csr(key: &Path, subj: &str, extra: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["req", "-new", "-utf8", "-key"])
        .arg(key)
        .args(["-subj", subj])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A subject attribute for [`typed_name`]: (OID, ASN.1 tag, value bytes as given).
pub type TAttr = (ObjectIdentifier, der::Tag, Vec<u8>);

/// `id-at-commonName`.
pub const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// `id-at-organizationName`.
pub const O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
/// `id-at-organizationalUnitName`.
pub const OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");

/// A subject with one attribute per RDN, each value encoded with exactly the given tag (the
/// string types `Name::from_str` would never choose: IA5String, VisibleString, BMPString, ...).
pub fn typed_name(attrs: &[TAttr]) -> Name {
    use x509_cert::attr::AttributeTypeAndValue;
    use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
    let mut rdns = RdnSequence::default();
    for (oid, tag, value) in attrs {
        let mut rdn = RelativeDistinguishedName::default();
        rdn.insert(AttributeTypeAndValue {
            oid: *oid,
            value: Any::new(*tag, value.as_slice()).unwrap(),
        })
        .unwrap();
        rdns.push(rdn);
    }
    Name::from_der(&rdns.to_der().unwrap()).unwrap()
}

/// `value` in the bytes of `tag` (BMPString as UTF-16BE; the others as given).
pub fn string_bytes(tag: der::Tag, value: &str) -> Vec<u8> {
    match tag {
        der::Tag::BmpString => value.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        _ => value.as_bytes().to_vec(),
    }
}

/// Builds a PEM CSR signed by `key` for an already built subject.
pub fn csr_named(key: &dyn SignKey, name: Name, sans: &[TSan]) -> Vec<u8> {
    let mut b = RequestBuilder::new(name).unwrap();
    if !sans.is_empty() {
        let names = sans
            .iter()
            .map(|s| match s {
                TSan::Dns(d) => GeneralName::DnsName(Ia5String::new(d).unwrap()),
                TSan::Ip(i) => GeneralName::from(i.parse::<IpAddr>().unwrap()),
                TSan::Email(e) => GeneralName::Rfc822Name(Ia5String::new(e).unwrap()),
                TSan::Uri(u) => GeneralName::UniformResourceIdentifier(Ia5String::new(u).unwrap()),
            })
            .collect();
        b.add_extension(&SubjectAltName(names)).unwrap();
    }
    let req: CertReq = b.build::<_, KeySignature>(&KeyRef(key)).unwrap();
    req.to_pem(LineEnding::LF).unwrap().into_bytes()
}

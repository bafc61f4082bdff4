//! Table-driven test over ≥ 40 CSRs: each with its expected outcome and reason; every issued
//! certificate is checked with `openssl verify`, pkilint, and by parsing it back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{issue_csr, issue_soft_key, issue_tools, table};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::Decode;
use issue_csr::{TExt, TSan, csr, fake_rsa_csr, openssl_csr, openssl_dsa_key, openssl_key, tamper};
use issue_soft_key::{SoftAlg, SoftKey};
use kubesigner::config::IssuanceConfig;
use kubesigner::issue::{
    self, CaBundle, CsrInput, CsrRejection, Issuer, Requester, Rule, ca::parse_subject,
    ca::self_signed_ca, names,
};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, SubjectAltName};

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Issued,
    Failed(Rule),
    Invalid(&'static str),
    NotOurs,
    Forbidden,
}

struct Case {
    name: &'static str,
    signer: &'static str,
    usages: &'static [&'static str],
    expiration: Option<i64>,
    pem: Vec<u8>,
    expect: Expect,
    /// Use the default config (kube-apiserver-client off).
    default_cfg: bool,
}

const CLIENT: &str = names::KUBELET_CLIENT;
const SERVING: &str = names::KUBELET_SERVING;
const APICLIENT: &str = names::APISERVER_CLIENT;
const NODE: &str = "CN=system:node:node1,O=system:nodes";
const NODE_SUBJ: &str = "/O=system:nodes/CN=system:node:node1";
const CU: &[&str] = &["digital signature", "client auth"];
const CUK: &[&str] = &["digital signature", "key encipherment", "client auth"];
const SU: &[&str] = &["digital signature", "server auth"];
const SUK: &[&str] = &["digital signature", "key encipherment", "server auth"];

fn case(
    name: &'static str,
    signer: &'static str,
    usages: &'static [&'static str],
    pem: Vec<u8>,
    expect: Expect,
) -> Case {
    Case {
        name,
        signer,
        usages,
        expiration: None,
        pem,
        expect,
        default_cfg: false,
    }
}

fn cases(dir: &std::path::Path) -> Vec<Case> {
    use Expect::*;
    let p256 = SoftKey::generate(SoftAlg::P256);
    let p384 = SoftKey::generate(SoftAlg::P384);
    let ed = SoftKey::generate(SoftAlg::Ed25519);
    let rsa = SoftKey::generate(SoftAlg::Rsa2048);
    let k = |key: &SoftKey, subj: &str| csr(key, subj, &[], &[]);
    let rsa_ossl = openssl_key(
        dir,
        "rsa2048",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let rsa1024 = openssl_key(
        dir,
        "rsa1024",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    );
    let ec_ossl = openssl_key(
        dir,
        "p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let p521 = openssl_key(
        dir,
        "p521",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    );
    let k1 = openssl_key(
        dir,
        "k1",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp256k1",
        ],
    );
    let dsa = openssl_dsa_key(dir);
    let mut v = vec![
        // Issued.
        case("client p256", CLIENT, CU, k(&p256, NODE), Issued),
        case(
            "client p256 asks key encipherment (dropped)",
            CLIENT,
            CUK,
            k(&p256, NODE),
            Issued,
        ),
        case(
            "client rsa2048 with key encipherment",
            CLIENT,
            CUK,
            k(&rsa, NODE),
            Issued,
        ),
        case("client p384", CLIENT, CU, k(&p384, NODE), Issued),
        case("client ed25519", CLIENT, CU, k(&ed, NODE), Issued),
        case(
            "client rsa-pss csr",
            CLIENT,
            CUK,
            openssl_csr(
                &rsa_ossl,
                NODE_SUBJ,
                &[
                    "-sha256",
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:digest",
                ],
            ),
            Issued,
        ),
        case(
            "client openssl p256 sha384",
            CLIENT,
            CU,
            openssl_csr(&ec_ossl, NODE_SUBJ, &["-sha384"]),
            Issued,
        ),
        case(
            "client other requested extension dropped",
            CLIENT,
            CU,
            csr(&p256, NODE, &[], &[TExt::KeyUsageCertSign]),
            Issued,
        ),
        case(
            "serving single-label + ip",
            SERVING,
            SU,
            csr(
                &p256,
                NODE,
                &[TSan::Dns("node1"), TSan::Ip("10.0.0.5")],
                &[],
            ),
            Issued,
        ),
        case(
            "serving fqdn",
            SERVING,
            SU,
            csr(&p256, NODE, &[TSan::Dns("node1.example.com")], &[]),
            Issued,
        ),
        case(
            "serving ipv6 only",
            SERVING,
            SU,
            csr(&p384, NODE, &[TSan::Ip("fd00::5")], &[]),
            Issued,
        ),
        case(
            "serving rsa key encipherment",
            SERVING,
            SUK,
            csr(&rsa, NODE, &[TSan::Ip("10.0.0.5")], &[]),
            Issued,
        ),
        case(
            "apiserver client",
            APICLIENT,
            CU,
            k(
                &p256,
                "CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins",
            ),
            Issued,
        ),
        // Signer rules: Failed / SignerValidationFailure.
        case(
            "cn without system:node:",
            CLIENT,
            CU,
            k(&p256, "CN=node1,O=system:nodes"),
            Failed(Rule::SubjectCommonName),
        ),
        case(
            "cn with empty node name",
            CLIENT,
            CU,
            k(&p256, "CN=system:node:,O=system:nodes"),
            Failed(Rule::SubjectCommonName),
        ),
        case(
            "cn with upper-case node name",
            CLIENT,
            CU,
            k(&p256, "CN=system:node:Node1,O=system:nodes"),
            Failed(Rule::SubjectCommonName),
        ),
        case(
            "two cn",
            CLIENT,
            CU,
            k(&p256, "CN=system:node:a,CN=system:node:b,O=system:nodes"),
            Failed(Rule::SubjectCommonName),
        ),
        case(
            "o system:masters",
            CLIENT,
            CU,
            k(&p256, "CN=system:node:node1,O=system:masters"),
            Failed(Rule::SubjectOrganization),
        ),
        case(
            "two o values",
            CLIENT,
            CU,
            k(
                &p256,
                "CN=system:node:node1,O=system:nodes,O=system:masters",
            ),
            Failed(Rule::SubjectOrganization),
        ),
        case(
            "no o",
            CLIENT,
            CU,
            k(&p256, "CN=system:node:node1"),
            Failed(Rule::SubjectOrganization),
        ),
        case(
            "extra ou",
            CLIENT,
            CU,
            k(&p256, "CN=system:node:node1,OU=x,O=system:nodes"),
            Failed(Rule::SubjectAttributes),
        ),
        case(
            "multi-valued rdn",
            CLIENT,
            CU,
            k(&p256, "CN=system:node:node1+O=system:nodes"),
            Failed(Rule::SubjectAttributes),
        ),
        case(
            "dns san on client",
            CLIENT,
            CU,
            csr(&p256, NODE, &[TSan::Dns("node1")], &[]),
            Failed(Rule::SubjectAltNames),
        ),
        case(
            "ip san on client",
            CLIENT,
            CU,
            csr(&p256, NODE, &[TSan::Ip("10.0.0.5")], &[]),
            Failed(Rule::SubjectAltNames),
        ),
        case(
            "email san on serving",
            SERVING,
            SU,
            csr(
                &p256,
                NODE,
                &[TSan::Dns("node1"), TSan::Email("a@example.com")],
                &[],
            ),
            Failed(Rule::SubjectAltNames),
        ),
        case(
            "uri san on serving",
            SERVING,
            SU,
            csr(&p256, NODE, &[TSan::Uri("https://node1/")], &[]),
            Failed(Rule::SubjectAltNames),
        ),
        case(
            "serving without san",
            SERVING,
            SU,
            k(&p256, NODE),
            Failed(Rule::SubjectAltNames),
        ),
        case(
            "serving bad dns syntax",
            SERVING,
            SU,
            csr(&p256, NODE, &[TSan::Dns("*.example.com")], &[]),
            Failed(Rule::SubjectAltNames),
        ),
        case(
            "usages with cert sign",
            CLIENT,
            &["digital signature", "client auth", "cert sign"],
            k(&p256, NODE),
            Failed(Rule::Usages),
        ),
        case(
            "usages any",
            CLIENT,
            &["any"],
            k(&p256, NODE),
            Failed(Rule::Usages),
        ),
        case(
            "client asks server auth",
            CLIENT,
            SU,
            k(&p256, NODE),
            Failed(Rule::Usages),
        ),
        case(
            "serving asks client auth",
            SERVING,
            CU,
            csr(&p256, NODE, &[TSan::Dns("node1")], &[]),
            Failed(Rule::Usages),
        ),
        case(
            "client without digital signature",
            CLIENT,
            &["client auth"],
            k(&p256, NODE),
            Failed(Rule::Usages),
        ),
        case(
            "csr asks ca:true",
            CLIENT,
            CU,
            csr(&p256, NODE, &[], &[TExt::CaTrue]),
            Failed(Rule::BasicConstraints),
        ),
        case(
            "sha1 rsa csr",
            CLIENT,
            CUK,
            openssl_csr(&rsa_ossl, NODE_SUBJ, &["-sha1"]),
            Failed(Rule::SignatureAlgorithm),
        ),
        case(
            "sha1 ecdsa csr",
            CLIENT,
            CU,
            openssl_csr(&ec_ossl, NODE_SUBJ, &["-sha1"]),
            Failed(Rule::SignatureAlgorithm),
        ),
        case(
            "rsa 1024",
            CLIENT,
            CUK,
            openssl_csr(&rsa1024, NODE_SUBJ, &["-sha256"]),
            Failed(Rule::RsaModulusSize),
        ),
        case(
            "rsa 16384",
            CLIENT,
            CUK,
            fake_rsa_csr(16384, NODE),
            Failed(Rule::RsaModulusSize),
        ),
        case(
            "p-521",
            CLIENT,
            CU,
            openssl_csr(&p521, NODE_SUBJ, &["-sha512"]),
            Failed(Rule::KeyCurve),
        ),
        case(
            "secp256k1",
            CLIENT,
            CU,
            openssl_csr(&k1, NODE_SUBJ, &["-sha256"]),
            Failed(Rule::KeyCurve),
        ),
        case(
            "dsa",
            CLIENT,
            CU,
            openssl_csr(&dsa, NODE_SUBJ, &["-sha256"]),
            Failed(Rule::KeyAlgorithm),
        ),
        case(
            "tampered signature",
            CLIENT,
            CU,
            tamper(&k(&p256, NODE)),
            Failed(Rule::ProofOfPossession),
        ),
        case(
            "tampered rsa signature",
            CLIENT,
            CUK,
            tamper(&k(&rsa, NODE)),
            Failed(Rule::ProofOfPossession),
        ),
        case(
            "apiserver client two cn",
            APICLIENT,
            CU,
            k(&p256, "CN=a,CN=b"),
            Failed(Rule::SubjectCommonName),
        ),
        case(
            "apiserver client san",
            APICLIENT,
            CU,
            csr(&p256, "CN=a", &[TSan::Dns("a.example.com")], &[]),
            Failed(Rule::SubjectAltNames),
        ),
        // API validation: 422.
        case(
            "duplicate usages",
            CLIENT,
            &["digital signature", "client auth", "client auth"],
            k(&p256, NODE),
            Invalid("spec.usages"),
        ),
        case(
            "unknown usage",
            CLIENT,
            &["digital signature", "Client Auth"],
            k(&p256, NODE),
            Invalid("spec.usages"),
        ),
        case(
            "empty usages",
            CLIENT,
            &[],
            k(&p256, NODE),
            Invalid("spec.usages"),
        ),
        case(
            "not pem",
            CLIENT,
            CU,
            b"hello".to_vec(),
            Invalid("spec.request"),
        ),
        case(
            "pem of a certificate",
            CLIENT,
            CU,
            b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".to_vec(),
            Invalid("spec.request"),
        ),
        case(
            "garbage der",
            CLIENT,
            CU,
            b"-----BEGIN CERTIFICATE REQUEST-----\nMAMCAQA=\n-----END CERTIFICATE REQUEST-----\n"
                .to_vec(),
            Invalid("spec.request"),
        ),
        case(
            "oversized request",
            CLIENT,
            CU,
            vec![b'A'; issue::MAX_CSR_PEM_BYTES + 1],
            Invalid("spec.request"),
        ),
        // Not ours.
        case(
            "legacy-unknown",
            names::LEGACY_UNKNOWN,
            CU,
            k(&p256, NODE),
            NotOurs,
        ),
        case(
            "custom signer",
            "example.com/custom",
            CU,
            k(&p256, NODE),
            NotOurs,
        ),
        // Admission.
        case(
            "apiserver client system:masters",
            APICLIENT,
            CU,
            k(&p256, "CN=evil,O=system:masters"),
            Forbidden,
        ),
        case(
            "apiserver client admin group",
            APICLIENT,
            CU,
            k(&p256, "CN=evil,O=cluster-admins"),
            Forbidden,
        ),
    ];
    let mut c = case(
        "expiration 599",
        CLIENT,
        CU,
        k(&p256, NODE),
        Invalid("spec.expirationSeconds"),
    );
    c.expiration = Some(599);
    v.push(c);
    let mut c = case("expiration 600", CLIENT, CU, k(&p256, NODE), Issued);
    c.expiration = Some(600);
    v.push(c);
    let mut c = case(
        "expiration one day",
        SERVING,
        SU,
        csr(&p256, NODE, &[TSan::Ip("10.0.0.5")], &[]),
        Issued,
    );
    c.expiration = Some(86_400);
    v.push(c);
    let mut c = case(
        "apiserver client disabled by default",
        APICLIENT,
        CU,
        k(&p256, "CN=a"),
        NotOurs,
    );
    c.default_cfg = true;
    v.push(c);
    v
}

fn extended_cfg() -> IssuanceConfig {
    let mut cfg = IssuanceConfig::default();
    cfg.signers.push(names::APISERVER_CLIENT.to_owned());
    cfg
}

/// `[auth] admin_groups` for the extended config: the default plus `cluster-admins`.
fn extended_admin_groups() -> Vec<String> {
    let mut groups = kubesigner::config::AuthConfig::default().admin_groups;
    groups.push("cluster-admins".to_owned());
    groups
}

#[test]
fn table_of_csrs_gives_the_expected_outcome_and_every_issued_certificate_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = Arc::new(SoftKey::generate(SoftAlg::P256));
    let now = SystemTime::now();
    let ca_cert = self_signed_ca(
        ca_key.as_ref(),
        parse_subject("CN=kubernetes").unwrap(),
        now,
        Duration::from_secs(10 * 365 * 86_400),
    )
    .unwrap();
    let ca_pem = issue::ca::to_pem(&ca_cert).unwrap();
    let bundle = CaBundle::from_pem(ca_pem.as_bytes()).unwrap();
    let cfg = extended_cfg();
    let issuer = Issuer::new(bundle, ca_key, cfg.clone()).unwrap();
    let all = cases(dir.path());
    assert!(all.len() >= 40, "only {} cases", all.len());
    let mut issued = 0;
    // Every case runs; the failures are listed together at the end.
    table::check_all(
        all.iter().enumerate(),
        |(_, c)| c.name.to_owned(),
        |&(i, c)| {
            let input = CsrInput {
                request_pem: c.pem.clone(),
                signer_name: c.signer.to_owned(),
                usages: c.usages.iter().map(|s| (*s).to_owned()).collect(),
                expiration_seconds: c.expiration,
                requester: Requester::default(),
            };
            let (use_cfg, admin_groups) = if c.default_cfg {
                (
                    IssuanceConfig::default(),
                    kubesigner::config::AuthConfig::default().admin_groups,
                )
            } else {
                (cfg.clone(), extended_admin_groups())
            };
            let got = match issue::validate_input(&input, &use_cfg) {
                Err(CsrRejection::SignerValidation(f)) => {
                    assert!(
                        f.to_string().contains(f.rule.name()),
                        "{}: message names the rule",
                        c.name
                    );
                    Expect::Failed(f.rule)
                }
                Err(CsrRejection::Invalid(e)) => Expect::Invalid(e.field()),
                Err(CsrRejection::NotOurSigner { .. }) => Expect::NotOurs,
                Ok(v) => match issue::admit(&v, &admin_groups) {
                    Err(_) => Expect::Forbidden,
                    Ok(()) => {
                        let cert = issuer
                            .issue(&v, now)
                            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
                        check_issued(dir.path(), i, c, &v, &cert, &ca_pem, now);
                        issued += 1;
                        Expect::Issued
                    }
                },
            };
            assert_eq!(got, c.expect, "case {:?}", c.name);
        },
    );
    assert!(issued >= 10);
}

fn check_issued(
    dir: &std::path::Path,
    i: usize,
    c: &Case,
    v: &issue::ValidatedCsr,
    cert: &issue::IssuedCertificate,
    ca_pem: &str,
    now: SystemTime,
) {
    let serving = c.signer == SERVING;
    issue_tools::openssl_verify(
        dir,
        ca_pem,
        &cert.pem_chain,
        Some(if serving { "sslserver" } else { "sslclient" }),
    );
    let findings = issue_tools::pkilint(
        dir,
        &format!("leaf{i}"),
        &issue_tools::first_pem(&cert.pem_chain),
    );
    let single_label = v
        .csr
        .sans
        .iter()
        .any(|s| matches!(s, issue::San::Dns(d) if !d.contains('.')));
    for f in &findings {
        assert!(
            single_label && f == "pkix.invalid_domain_name_syntax",
            "{}: pkilint finding {f}",
            c.name
        );
    }
    eprintln!("{}: findings {findings:?}", c.name);
    let parsed = Certificate::from_der(&cert.der).unwrap();
    let tbs = parsed.tbs_certificate();
    assert_eq!(tbs.subject(), v.csr.subject.name(), "{}", c.name);
    assert_eq!(tbs.subject_public_key_info(), &v.csr.public_key);
    let (crit, ku) = tbs.get_extension::<KeyUsage>().unwrap().unwrap();
    assert!(crit);
    assert!(ku.digital_signature());
    let want_ke = c.usages.contains(&"key encipherment") && v.csr.key.is_rsa();
    assert_eq!(
        ku.key_encipherment(),
        want_ke,
        "{}: keyEncipherment",
        c.name
    );
    assert!(!ku.key_cert_sign());
    let (_, eku) = tbs.get_extension::<ExtendedKeyUsage>().unwrap().unwrap();
    assert_eq!(
        eku.0,
        vec![if serving {
            issue::oids::KP_SERVER_AUTH
        } else {
            issue::oids::KP_CLIENT_AUTH
        }]
    );
    let san = tbs.get_extension::<SubjectAltName>().unwrap();
    assert_eq!(san.is_some(), serving, "{}: SAN presence", c.name);
    let serial = tbs.serial_number().as_bytes();
    assert!(!serial.is_empty() && serial.len() <= 17);
    let nb = tbs.validity().not_before.to_system_time();
    let na = tbs.validity().not_after.to_system_time();
    let now_s = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        nb.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
        now_s - 300
    );
    let life = na.duration_since(nb).unwrap().as_secs();
    let want = match c.expiration {
        Some(600) => 900,
        Some(s) => s as u64,
        None => 8760 * 3600,
    };
    assert_eq!(life, want, "{}: lifetime", c.name);
}

#[test]
fn a_separate_ca_per_signer_name() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let mk = |cn: &str| {
        let key = Arc::new(SoftKey::generate(SoftAlg::P256));
        let cert = self_signed_ca(
            key.as_ref(),
            parse_subject(cn).unwrap(),
            now,
            Duration::from_secs(365 * 86_400),
        )
        .unwrap();
        let pem = issue::ca::to_pem(&cert).unwrap();
        (key, pem)
    };
    let (client_key, client_pem) = mk("CN=kubernetes-client-ca");
    let (serving_key, serving_pem) = mk("CN=kubelet-serving-ca");
    let cfg = IssuanceConfig::default();
    let issuer = Issuer::new(
        CaBundle::from_pem(client_pem.as_bytes()).unwrap(),
        client_key,
        cfg.clone(),
    )
    .unwrap()
    .with_signer_ca(
        issue::SignerName::KubeletServing,
        CaBundle::from_pem(serving_pem.as_bytes()).unwrap(),
        serving_key.clone(),
    )
    .unwrap();
    // A key that is not the certificate's is refused.
    let (_, other_pem) = mk("CN=other");
    assert!(
        Issuer::new(
            CaBundle::from_pem(other_pem.as_bytes()).unwrap(),
            serving_key,
            cfg.clone()
        )
        .is_err()
    );
    let subject_key = SoftKey::generate(SoftAlg::P256);
    let mk_input = |signer: &str, sans: &[TSan], usages: &[&str]| CsrInput {
        request_pem: csr(&subject_key, NODE, sans, &[]),
        signer_name: signer.to_owned(),
        usages: usages.iter().map(|s| (*s).to_owned()).collect(),
        expiration_seconds: None,
        requester: Requester::default(),
    };
    let client = issue::validate_input(&mk_input(CLIENT, &[], CU), &cfg).unwrap();
    let serving =
        issue::validate_input(&mk_input(SERVING, &[TSan::Ip("10.0.0.5")], SU), &cfg).unwrap();
    let c = issuer.issue(&client, now).unwrap();
    let s = issuer.issue(&serving, now).unwrap();
    issue_tools::openssl_verify(dir.path(), &client_pem, &c.pem_chain, Some("sslclient"));
    issue_tools::openssl_verify(dir.path(), &serving_pem, &s.pem_chain, Some("sslserver"));
    let same = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.path().join("verify-ca.pem"))
        .arg(dir.path().join("verify-leaf.pem"))
        .output()
        .unwrap();
    assert!(same.status.success());
    std::fs::write(dir.path().join("verify-ca.pem"), &client_pem).unwrap();
    let cross = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.path().join("verify-ca.pem"))
        .arg(dir.path().join("verify-leaf.pem"))
        .output()
        .unwrap();
    assert!(
        !cross.status.success(),
        "serving leaf must not chain to the client CA"
    );
}

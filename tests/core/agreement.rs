//! "What is authorized is what is signed" (issue 17): a differential property test.
//!
//! For generated requests — PEM framing variants (preambles with and without newline, a second
//! block before or after, CRLF, surrounding whitespace, base64 line lengths, the `NEW
//! CERTIFICATE REQUEST` label) and subjects with every string type and duplicate attributes —
//! the facts the API reads from the one parse (the store's index: subject CN and node name;
//! admission) agree with the generator's ground truth and with the certificate the signer
//! produced (subject, node name, SANs, public key), or the request is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{issue_csr, issue_soft_key};

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use der::{Decode, Encode, Tag};
use issue_csr::{CN, O, OU, TAttr, TSan, csr_named, string_bytes, typed_name};
use issue_soft_key::{SoftAlg, SoftKey};
use kubesigner::config::IssuanceConfig;
use kubesigner::core::index_of;
use kubesigner::issue::{
    self, CaBundle, CsrRejection, CsrRequest, Issuer, Requester, SpecFields, SubjectIdentity,
    ca::{parse_subject, self_signed_ca},
    names,
};
use proptest::prelude::*;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;

const TAGS: [Tag; 6] = [
    Tag::Utf8String,
    Tag::PrintableString,
    Tag::Ia5String,
    Tag::VisibleString,
    Tag::BmpString,
    Tag::TeletexString,
];
const VALUES: [&str; 6] = [
    "system:node:n1",
    "system:node:victim",
    "system:nodes",
    "system:masters",
    "cluster-admins",
    "x",
];

/// How the PEM text is framed around the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Plain,
    Whitespace,
    Crlf,
    Wrap40,
    Wrap76,
    PreambleNoNewline,
    PreambleNewline,
    SecondBlockAfter,
    SecondBlockBefore,
    NewLabel,
}

impl Framing {
    /// Framings the appliance must accept (all others must be refused with a 422). Base64 lines
    /// are RFC 7468's strict 64 columns (what Go, openssl and Python write); other widths are
    /// refused, stricter than Go's lenient reader.
    fn acceptable(self) -> bool {
        matches!(self, Framing::Plain | Framing::Whitespace | Framing::Crlf)
    }
}

const FRAMINGS: [Framing; 10] = [
    Framing::Plain,
    Framing::Whitespace,
    Framing::Crlf,
    Framing::Wrap40,
    Framing::Wrap76,
    Framing::PreambleNoNewline,
    Framing::PreambleNewline,
    Framing::SecondBlockAfter,
    Framing::SecondBlockBefore,
    Framing::NewLabel,
];

fn wrap(der: &[u8], label: &str, width: usize, eol: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----{eol}");
    for chunk in b64.as_bytes().chunks(width) {
        s.push_str(std::str::from_utf8(chunk).unwrap());
        s.push_str(eol);
    }
    s.push_str(&format!("-----END {label}-----{eol}"));
    s
}

fn frame(der: &[u8], victim: &[u8], f: Framing) -> Vec<u8> {
    const L: &str = "CERTIFICATE REQUEST";
    let text = match f {
        Framing::Plain => wrap(der, L, 64, "\n"),
        Framing::Whitespace => format!(" \n\t{}\n \n", wrap(der, L, 64, "\n")),
        Framing::Crlf => wrap(der, L, 64, "\r\n"),
        Framing::Wrap40 => wrap(der, L, 40, "\n"),
        Framing::Wrap76 => wrap(der, L, 76, "\n"),
        Framing::PreambleNoNewline => format!("x{}", wrap(der, L, 64, "\n")),
        Framing::PreambleNewline => format!("x\n{}", wrap(der, L, 64, "\n")),
        Framing::SecondBlockAfter => {
            format!("{}{}", wrap(der, L, 64, "\n"), wrap(victim, L, 64, "\n"))
        }
        Framing::SecondBlockBefore => {
            format!("x{}{}", wrap(victim, L, 64, "\n"), wrap(der, L, 64, "\n"))
        }
        Framing::NewLabel => wrap(der, "NEW CERTIFICATE REQUEST", 64, "\n"),
    };
    text.into_bytes()
}

struct Fixture {
    issuer: Issuer,
    key: SoftKey,
    victim_der: Vec<u8>,
    cfg: IssuanceConfig,
    admin_groups: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ca_key = Arc::new(SoftKey::generate(SoftAlg::P256));
        let cert = self_signed_ca(
            ca_key.as_ref(),
            parse_subject("CN=kubernetes").unwrap(),
            SystemTime::now(),
            Duration::from_secs(86_400 * 365),
        )
        .unwrap();
        let pem = issue::ca::to_pem(&cert).unwrap();
        let mut cfg = IssuanceConfig::default();
        cfg.signers.push(names::APISERVER_CLIENT.to_owned());
        let issuer = Issuer::new(
            CaBundle::from_pem(pem.as_bytes()).unwrap(),
            ca_key,
            cfg.clone(),
        )
        .unwrap();
        let key = SoftKey::generate(SoftAlg::P256);
        let victim = csr_named(
            &SoftKey::generate(SoftAlg::P256),
            typed_name(&[
                (O, Tag::Utf8String, b"system:nodes".to_vec()),
                (CN, Tag::Utf8String, b"system:node:victim".to_vec()),
            ]),
            &[],
        );
        let victim_der = der::pem::decode_vec(&victim).unwrap().1;
        let mut admin_groups = kubesigner::config::AuthConfig::default().admin_groups;
        admin_groups.push("cluster-admins".to_owned());
        Fixture {
            issuer,
            key,
            victim_der,
            cfg,
            admin_groups,
        }
    })
}

fn attr() -> impl Strategy<Value = (usize, usize, usize)> {
    (0..3usize, 0..TAGS.len(), 0..VALUES.len())
}

fn text_of(cert: &Certificate, oid: der::oid::ObjectIdentifier) -> Vec<String> {
    // A second reader of the issued subject: x509-cert's DirectoryString (UTF8String and
    // PrintableString, the only types a node certificate may carry).
    cert.tbs_certificate()
        .subject()
        .iter()
        .filter(|a| a.oid == oid)
        .map(|a| {
            a.value
                .decode_as::<x509_cert::ext::pkix::name::DirectoryString>()
                .map(|d| d.value().into_owned())
                .unwrap_or_else(|_| "<not a DirectoryString>".to_owned())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("KUBESIGNER_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2048),
        failure_persistence: crate::support::regressions::beside_source(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_api_facts_and_the_signed_certificate_agree_or_the_request_is_refused(
        attrs in proptest::collection::vec(attr(), 1..5),
        signer in 0..3usize,
        with_sans in any::<bool>(),
        framing in 0..FRAMINGS.len(),
    ) {
        let f = fixture();
        let framing = FRAMINGS[framing];
        let signer_name = [names::KUBELET_CLIENT, names::KUBELET_SERVING, names::APISERVER_CLIENT][signer];
        let oids = [CN, O, OU];
        let generated: Vec<TAttr> = attrs
            .iter()
            .map(|(o, t, v)| (oids[*o], TAGS[*t], string_bytes(TAGS[*t], VALUES[*v])))
            .collect();
        let sans = if with_sans { vec![TSan::Dns("n1"), TSan::Ip("10.0.0.1")] } else { vec![] };
        let pem = csr_named(&f.key, typed_name(&generated), &sans);
        let der = der::pem::decode_vec(&pem).unwrap().1;
        let text = frame(&der, &f.victim_der, framing);

        // 1. The API edge: the one parse.
        let request = match CsrRequest::parse(&text) {
            Ok(r) => r,
            Err(_) => {
                prop_assert!(!framing.acceptable(), "{framing:?} refused");
                return Ok(());
            }
        };
        prop_assert!(framing.acceptable(), "{framing:?} accepted");
        // Ground truth from the generator: the single CN (any string type), the node it names.
        let cns: Vec<&str> = attrs.iter().filter(|(o, _, _)| *o == 0).map(|(_, _, v)| VALUES[*v]).collect();
        let truth_cn = (cns.len() == 1).then(|| cns[0]);
        let index = index_of(&request);
        prop_assert_eq!(index.subject_cn.as_deref(), truth_cn);
        prop_assert_eq!(
            index.node_name.as_deref(),
            truth_cn.and_then(|c| c.strip_prefix("system:node:"))
        );

        // 2. The core: validation of that same value, admission.
        let fields = SpecFields {
            signer_name: signer_name.to_owned(),
            usages: match signer {
                1 => vec!["digital signature".into(), "server auth".into()],
                _ => vec!["digital signature".into(), "client auth".into()],
            },
            expiration_seconds: None,
            requester: Requester::default(),
        };
        let v = match issue::validate_request(request, &fields, &f.cfg) {
            Ok(v) => v,
            Err(CsrRejection::SignerValidation(_)) => {
                // A node profile takes UTF8String/PrintableString only: whatever failed, a
                // request with only those types, one CN, one O=system:nodes, nothing else and
                // the right SANs would have passed; nothing more to compare.
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected rejection {e}"))),
        };
        let types_ok = generated.iter().all(|(_, t, _)| matches!(t, Tag::Utf8String | Tag::PrintableString));
        if signer < 2 {
            prop_assert!(types_ok, "a node profile accepted a value type outside UTF8/Printable");
            prop_assert_eq!(&v.identity, &SubjectIdentity::Node(issue::NodeName::from_common_name(truth_cn.unwrap()).unwrap()));
        }
        let admin_in_o = attrs.iter().any(|(o, _, val)| *o == 1 && matches!(VALUES[*val], "system:masters" | "cluster-admins"));
        let admitted = issue::admit(&v, &f.admin_groups).is_ok();
        if signer == 2 {
            prop_assert_eq!(admitted, !admin_in_o, "admission vs O values {:?}", generated);
        }
        if !admitted {
            return Ok(());
        }

        // 3. The signature, and the certificate against the API's facts.
        let issued = f.issuer.issue(&v, SystemTime::now()).unwrap();
        let cert = Certificate::from_der(&issued.der).unwrap();
        let tbs = cert.tbs_certificate();
        let requested = x509_cert::name::Name::from_der(&typed_name(&generated).to_der().unwrap()).unwrap();
        prop_assert_eq!(tbs.subject(), &requested);
        prop_assert_eq!(tbs.subject_public_key_info(), &f.key_spki());
        if signer < 2 {
            prop_assert_eq!(text_of(&cert, CN), vec![truth_cn.unwrap().to_owned()]);
            prop_assert_eq!(text_of(&cert, O), vec!["system:nodes".to_owned()]);
        }
        let cert_sans = tbs
            .extensions()
            .into_iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
            .map(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).unwrap().0.len())
            .unwrap_or(0);
        prop_assert_eq!(cert_sans, if signer == 1 { sans.len() } else { 0 });
    }
}

impl Fixture {
    fn key_spki(&self) -> spki::SubjectPublicKeyInfoOwned {
        kubesigner::signer::SignKey::public_key(&self.key).clone()
    }
}

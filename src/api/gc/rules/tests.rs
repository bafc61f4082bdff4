use super::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequestCondition as Cond, CertificateSigningRequestStatus as Status,
};

const LEAF: &str = include_str!("../testdata/gc_leaf.pem");
/// NotAfter of `testdata/gc_leaf.pem` (`openssl x509 -noout -enddate`).
const LEAF_NOT_AFTER: &str = "2026-12-25T15:10:47Z";
const T0: &str = "2026-06-01T00:00:00Z";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// `T0 + secs`: the controllable clock.
fn at(secs: i64) -> Timestamp {
    ts(T0).checked_add(SignedDuration::from_secs(secs)).unwrap()
}

fn cond(ty: &str, updated: Option<i64>) -> Cond {
    Cond {
        type_: ty.into(),
        status: "True".into(),
        last_update_time: updated.map(|s| Time(at(s))),
        ..Cond::default()
    }
}

/// A CSR created at T0 with the given conditions and optional certificate.
fn csr(conds: Vec<Cond>, cert: Option<&str>) -> CertificateSigningRequest {
    let mut c = CertificateSigningRequest::default();
    c.metadata.creation_timestamp = Some(Time(ts(T0)));
    c.status = Some(Status {
        conditions: Some(conds),
        certificate: cert.map(|p| ByteString(p.as_bytes().to_vec())),
    });
    c
}

const H: i64 = 3600;

#[test]
fn table_of_upstream_rules_with_a_controllable_clock() {
    let cfg = GcConfig::default();
    let approved = || vec![cond("Approved", Some(10))];
    let cases: Vec<(&str, CertificateSigningRequest, i64, Option<GcReason>)> = vec![
        ("pending, 23h59m", csr(vec![], None), 24 * H - 60, None),
        ("pending, exactly 24h", csr(vec![], None), 24 * H, None),
        (
            "pending, 24h+1s",
            csr(vec![], None),
            24 * H + 1,
            Some(GcReason::Pending),
        ),
        (
            "issued, 1h after approval",
            csr(approved(), Some(LEAF)),
            H + 10,
            None,
        ),
        (
            "issued, 1h+1s after approval",
            csr(approved(), Some(LEAF)),
            H + 11,
            Some(GcReason::Issued),
        ),
        (
            "denied, 59m",
            csr(vec![cond("Denied", Some(0))], None),
            H - 60,
            None,
        ),
        (
            "denied, 1h+1s",
            csr(vec![cond("Denied", Some(0))], None),
            H + 1,
            Some(GcReason::Denied),
        ),
        (
            "failed, 1h+1s",
            csr(
                vec![cond("Approved", Some(0)), cond("Failed", Some(5))],
                None,
            ),
            H + 6,
            Some(GcReason::Failed),
        ),
        (
            "failed, 30m",
            csr(vec![cond("Failed", Some(5))], None),
            1800,
            None,
        ),
    ];
    for (name, c, secs, want) in cases {
        assert_eq!(collect(&c, at(secs), &cfg), want, "{name}");
    }
}

#[test]
fn approved_but_unissued_is_never_collected() {
    let cfg = GcConfig::default();
    let c = csr(vec![cond("Approved", Some(0))], None);
    for secs in [H + 1, 24 * H + 1, 365 * 24 * H] {
        assert_eq!(collect(&c, at(secs), &cfg), None, "after {secs}s");
    }
    // An empty certificate is not "issued" either.
    let c = csr(vec![cond("Approved", Some(0))], Some(""));
    assert_eq!(collect(&c, at(365 * 24 * H), &cfg), None);
}

#[test]
fn issued_certificate_expiry_is_collected_even_with_long_ages() {
    let cfg = GcConfig {
        approved_age: Duration::from_secs(10 * 365 * 24 * 3600),
        ..GcConfig::default()
    };
    let c = csr(vec![cond("Approved", Some(0))], Some(LEAF));
    let not_after = ts(LEAF_NOT_AFTER);
    assert_eq!(collect(&c, not_after, &cfg), None);
    let after = not_after.checked_add(SignedDuration::from_secs(1)).unwrap();
    assert_eq!(collect(&c, after, &cfg), Some(GcReason::CertificateExpired));
    // Leading text before the PEM block is allowed (reference §1.3) and still parsed.
    let with_text = format!("issued by kubesigner\n{LEAF}");
    let c = csr(vec![cond("Approved", Some(0))], Some(&with_text));
    assert_eq!(collect(&c, after, &cfg), Some(GcReason::CertificateExpired));
}

#[test]
fn unparseable_certificate_falls_back_to_the_age_rule() {
    let cfg = GcConfig::default();
    let c = csr(
        vec![cond("Approved", Some(0))],
        Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    );
    assert_eq!(collect(&c, at(H), &cfg), None);
    assert_eq!(collect(&c, at(H + 1), &cfg), Some(GcReason::Issued));
}

#[test]
fn missing_times_fall_back_to_transition_then_creation() {
    let cfg = GcConfig::default();
    let mut d = cond("Denied", None);
    d.last_transition_time = Some(Time(at(100)));
    let c = csr(vec![d], None);
    assert_eq!(collect(&c, at(H + 100), &cfg), None);
    assert_eq!(collect(&c, at(H + 101), &cfg), Some(GcReason::Denied));
    let c = csr(vec![cond("Denied", None)], None);
    assert_eq!(collect(&c, at(H + 1), &cfg), Some(GcReason::Denied));
    // No time at all: kept.
    let mut c = csr(vec![], None);
    c.metadata.creation_timestamp = None;
    assert_eq!(collect(&c, at(1000 * H), &cfg), None);
}

#[test]
fn other_condition_types_count_as_pending() {
    let cfg = GcConfig::default();
    let c = csr(vec![cond("example.com/Checked", Some(0))], None);
    assert_eq!(collect(&c, at(24 * H + 1), &cfg), Some(GcReason::Pending));
    // A condition with status False is not a decision either.
    let mut no = cond("Approved", Some(0));
    no.status = "False".into();
    let c = csr(vec![no], Some(LEAF));
    assert_eq!(collect(&c, at(24 * H + 1), &cfg), Some(GcReason::Pending));
}

#[test]
fn configured_ages_apply() {
    let cfg = GcConfig {
        pending_age: Duration::from_secs(60),
        denied_age: Duration::from_secs(5),
        ..GcConfig::default()
    };
    assert_eq!(
        collect(&csr(vec![], None), at(61), &cfg),
        Some(GcReason::Pending)
    );
    let c = csr(vec![cond("Denied", Some(0))], None);
    assert_eq!(collect(&c, at(6), &cfg), Some(GcReason::Denied));
    let huge = GcConfig {
        pending_age: Duration::MAX,
        ..GcConfig::default()
    };
    assert_eq!(collect(&csr(vec![], None), at(1000 * H), &huge), None);
}

#[test]
fn config_section_parses_with_defaults_and_humantime() {
    let cfg: GcConfig = toml::from_str("pending_age = \"2h\"\ninterval = \"10m\"").unwrap();
    assert_eq!(cfg.pending_age, Duration::from_secs(7200));
    assert_eq!(cfg.interval, Duration::from_secs(600));
    assert_eq!(cfg.approved_age, Duration::from_secs(3600));
    assert!(cfg.enabled);
    assert!(toml::from_str::<GcConfig>("pending = \"2h\"").is_err());
    assert!(toml::from_str::<GcConfig>("pending_age = \"soon\"").is_err());
    assert_eq!(toml::from_str::<GcConfig>("").unwrap(), GcConfig::default());
}

proptest::proptest! {
    #[test]
    fn arbitrary_certificates_and_times_never_panic(
        cert in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        secs in -1_000_000i64..1_000_000_000,
        with_pem in proptest::prelude::any::<bool>(),
    ) {
        let mut text = if with_pem { b"-----BEGIN CERTIFICATE-----\n".to_vec() } else { Vec::new() };
        text.extend(cert);
        if with_pem {
            text.extend(b"\n-----END CERTIFICATE-----\n");
        }
        let mut c = csr(vec![cond("Approved", Some(0))], None);
        if let Some(s) = c.status.as_mut() {
            s.certificate = Some(ByteString(text));
        }
        let _ = collect(&c, at(secs), &GcConfig::default());
    }
}

use super::*;
use crate::config::NodePatterns;

fn parse(text: &str) -> Result<ControllerConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn defaults_are_client_go_timings_and_both_kubelet_signers() {
    let c = ControllerConfig::default();
    c.check().unwrap();
    assert_eq!(c.lease_duration, Duration::from_secs(15));
    assert_eq!(
        parse_signers(&c.signers).unwrap(),
        [SignerName::KubeletClient, SignerName::KubeletServing]
    );
    assert!(!c.approve);
}

#[test]
fn section_parses_short_signers_and_token_bindings() {
    let c = parse(
        "signers = [\"kubelet-serving\"]\napprove = true\nlease_duration = \"3s\"\n\
         renew_deadline = \"2s\"\nretry_period = \"500ms\"\n\
         [bootstrap_token_nodes]\nabcdef = \"node-a*\"\nghijkl = [\"x\", \"y\"]\n",
    )
    .unwrap();
    c.check().unwrap();
    assert_eq!(
        parse_signers(&c.signers).unwrap(),
        [SignerName::KubeletServing]
    );
    assert_eq!(c.bootstrap_token_nodes["ghijkl"].as_slice().len(), 2);
}

#[test]
fn unknown_key_and_bad_values_are_refused() {
    assert!(parse("lease = \"x\"\n").is_err());
    let bad_signer = ControllerConfig {
        signers: vec!["kube-apiserver-client".into()],
        ..ControllerConfig::default()
    };
    assert!(matches!(
        bad_signer.check(),
        Err(ControllerConfigError::Signer { .. })
    ));
    let bad_times = ControllerConfig {
        renew_deadline: Duration::from_secs(20),
        ..ControllerConfig::default()
    };
    assert!(matches!(
        bad_times.check(),
        Err(ControllerConfigError::Durations { .. })
    ));
    let mut bad_token = ControllerConfig::default();
    bad_token
        .bootstrap_token_nodes
        .insert("ABC".into(), NodePatterns::One("n".into()));
    assert!(matches!(
        bad_token.check(),
        Err(ControllerConfigError::TokenBinding { .. })
    ));
    let empty_name = ControllerConfig {
        lease_name: String::new(),
        ..ControllerConfig::default()
    };
    assert!(matches!(
        empty_name.check(),
        Err(ControllerConfigError::Name { .. })
    ));
}

#[test]
fn active_active_needs_an_identity_that_can_name_a_lease() {
    let c = parse("mode = \"active-active\"\nidentity = \"kubesigner-0\"\n").unwrap();
    assert_eq!(c.mode, crate::config::ControllerMode::ActiveActive);
    c.check().unwrap();
    for bad in [
        "Kubesigner-0",
        "host_123",
        "-a",
        "a-",
        "a.b",
        &"a".repeat(64),
    ] {
        let c = ControllerConfig {
            mode: crate::config::ControllerMode::ActiveActive,
            identity: Some(bad.to_owned()),
            ..ControllerConfig::default()
        };
        assert!(
            matches!(c.check(), Err(ControllerConfigError::MemberIdentity { .. })),
            "{bad:?}"
        );
        // The same identity is fine for the single leader Lease.
        let leader = ControllerConfig {
            identity: Some(bad.to_owned()),
            ..ControllerConfig::default()
        };
        assert!(leader.check().is_ok() || bad.len() > 253);
    }
    assert!(parse("mode = \"both\"\n").is_err());
}

#[test]
fn default_member_identity_is_a_dns_label() {
    for (host, pid, want) in [
        ("Node_1.example.com", 42, "node-1-example-com-42"),
        ("___", 7, "r-7"),
        (
            &"x".repeat(100),
            12345,
            &format!("{}-12345", "x".repeat(57)),
        ),
    ] {
        let id = member_identity_from(host, pid);
        assert_eq!(id, want);
        assert!(is_member_identity(&id, "kubesigner-controller"), "{id}");
    }
}

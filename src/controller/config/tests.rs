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

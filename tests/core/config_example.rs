//! The example configuration in systemd/ parses, and names every section the appliance has.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn example_config_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/kubesigner.example.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let cfg = kubesigner::config::Config::parse(&text).unwrap();
    assert_eq!(cfg.server, kubesigner::config::ServerConfig::default());
    assert_eq!(cfg.issuance, kubesigner::config::IssuanceConfig::default());
    assert_eq!(cfg.auth, kubesigner::config::AuthConfig::default());
    assert_eq!(cfg.gc, kubesigner::config::GcConfig::default());
    assert_eq!(cfg.limits, kubesigner::config::LimitsConfig::default());
    assert_eq!(cfg.audit, kubesigner::config::AuditConfig::default());
    assert_eq!(
        cfg.controller,
        kubesigner::config::ControllerConfig::default()
    );
}

#[test]
fn example_config_names_every_gc_and_limits_key() {
    // The example documents each key with its value, not just the section headers.
    let text = include_str!("../../systemd/kubesigner.example.toml");
    let table: toml::Table = toml::from_str(text).unwrap();
    let keys = |section: &str| -> Vec<String> {
        table[section].as_table().unwrap().keys().cloned().collect()
    };
    let mut gc = keys("gc");
    gc.sort();
    assert_eq!(
        gc,
        [
            "approved_age",
            "denied_age",
            "enabled",
            "failed_age",
            "interval",
            "pending_age"
        ]
    );
    assert_eq!(keys("limits").len(), 8, "{:?}", keys("limits"));
}

#[test]
fn unknown_key_is_refused() {
    let bad = "data_dir = \"d\"\nlisten = \"x\"\n[signer]\nkey = \"pkcs11:token=t\"\n[ca]\ncert_file = \"c\"\n";
    let err = kubesigner::config::Config::parse(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen"), "{err}");
}

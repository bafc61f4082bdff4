//! Unit tests for `serve.rs`.

use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct T {
    #[command(flatten)]
    args: ServeArgs,
}

fn parse(args: &[&str]) -> Result<Config, ServeConfigError> {
    let mut argv = vec!["serve"];
    argv.extend_from_slice(args);
    T::try_parse_from(argv).unwrap().args.config()
}

#[test]
fn seeds_flags_without_config() {
    let cfg = parse(&[
        "--data-dir",
        "d",
        "--cluster-signing-cert-file",
        "ca.pem",
        "--cluster-signing-key",
        "pkcs11:token=t;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/p",
        "--token-auth-file",
        "tokens.csv",
        "--listen",
        "0.0.0.0:6443",
        "--insecure-experimental-approve-all-kubelet-csrs-for-group",
        "system:kubelet-bootstrap",
        "--auto-approve-group",
        "extra",
    ])
    .unwrap();
    assert_eq!(cfg.server.listen.port(), 6443);
    assert_eq!(
        cfg.auth.token_auth_file.as_deref(),
        Some(Path::new("tokens.csv"))
    );
    let groups = &cfg.issuance.auto_approve_groups;
    assert!(
        groups.iter().any(|g| g == "system:kubelet-bootstrap"),
        "{groups:?}"
    );
    assert!(groups.iter().any(|g| g == "extra"));
}

#[test]
fn missing_flags_and_pin_on_command_line_refused() {
    assert!(matches!(
        parse(&["--data-dir", "d"]),
        Err(ServeConfigError::Missing(_))
    ));
    let pin = parse(&[
        "--data-dir",
        "d",
        "--cluster-signing-cert-file",
        "c",
        "--cluster-signing-key",
        "pkcs11:token=t;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
    ]);
    assert!(matches!(pin, Err(ServeConfigError::Key(_))), "{pin:?}");
}

#[test]
fn config_file_paths_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(&path, "data_dir = \"data\"\n[signer]\nkey = \"pkcs11:token=t;object=ca\"\n[ca]\ncert_file = \"ca.pem\"\n[server]\nlisten = \"127.0.0.1:7443\"\nmax_watches = 3\n").unwrap();
    let cfg = parse(&[
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:8443",
    ])
    .unwrap();
    assert_eq!(cfg.data_dir, dir.path().join("data"));
    assert_eq!(cfg.ca.cert_file, dir.path().join("ca.pem"));
    assert_eq!(cfg.server.listen.port(), 8443, "flags override the file");
    assert_eq!(cfg.server.max_watches, 3);
}

//! `kubesigner token …` run as a user would: the real binary, a config file, a data dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use kubesigner::authn::{AuthMethod, Authenticator, AuthnOutcome};
use kubesigner::config::{AuthConfig, Config};

fn kubesigner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubesigner"))
        .args(args)
        .env("KUBESIGNER_LOG", "info")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A full config file (the token commands must ignore the sections they do not use).
fn write_config(dir: &Path, extra: &str) -> String {
    let path = dir.join("kubesigner.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"data\"\n[signer]\nkey = \"pkcs11:token=x;object=ca\"\n[ca]\ncert_file = \"ca.crt\"\n{extra}"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn generate_static_prints_a_128_bit_hex_token() {
    let a = kubesigner(&["token", "generate-static"]);
    let b = kubesigner(&["token", "generate-static"]);
    assert!(a.status.success());
    let (a, b) = (stdout(&a), stdout(&b));
    let token = a.strip_suffix('\n').unwrap();
    assert_eq!(token.len(), 32);
    assert!(
        token
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "{token}"
    );
    assert_ne!(a, b);
}

#[test]
fn create_list_authenticate_delete() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    // A running server's authenticator, opened before the token exists, must see it.
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let cfg = Config::load(Path::new(&config)).unwrap();
    assert_eq!(cfg.auth, AuthConfig::default());
    let authn = Authenticator::new(&cfg.auth, &dir.path().join("data")).unwrap();
    let out = kubesigner(&[
        "token",
        "create",
        "--config",
        &config,
        "--ttl",
        "2h",
        "--groups",
        "system:bootstrappers:kubeadm:default-node-token",
        "--description",
        "rack 7",
        "--node-name-pattern",
        "rack7-*",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = stdout(&out);
    let token = printed.strip_suffix('\n').unwrap();
    assert_eq!(printed.lines().count(), 1, "only the token on stdout");
    let (id, secret) = token.split_once('.').unwrap();
    assert_eq!((id.len(), secret.len()), (6, 16));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(secret),
        "secret in the log"
    );

    let list = kubesigner(&["token", "list", "--config", &config]);
    assert!(list.status.success());
    let listed = stdout(&list);
    let row = listed.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(!row.contains("expired"), "{row}");
    assert!(
        row.contains("system:bootstrappers:kubeadm:default-node-token"),
        "{row}"
    );
    assert!(row.contains("rack7-*") && row.contains("rack 7"), "{row}");
    assert!(!listed.contains(secret));

    // The token authenticates through the database the server has open.
    let header = format!("Bearer {token}");
    let AuthnOutcome::Authenticated(ident) =
        authn.authenticate(None, Some(header.as_bytes()), SystemTime::now())
    else {
        panic!("token does not authenticate");
    };
    assert_eq!(ident.user, format!("system:bootstrap:{id}"));
    let AuthMethod::BootstrapToken(info) = &ident.method else {
        panic!()
    };
    assert!(info.allows_node("rack7-12") && !info.allows_node("rack8-1"));
    // Expiry honoured: two hours and a second from now it is refused.
    let later = SystemTime::now() + std::time::Duration::from_secs(2 * 3600 + 1);
    assert!(matches!(
        authn.authenticate(None, Some(header.as_bytes()), later),
        AuthnOutcome::Rejected(_)
    ));
    drop(authn);

    let del = kubesigner(&["token", "delete", "--config", &config, id]);
    assert!(del.status.success());
    let again = kubesigner(&["token", "delete", "--config", &config, id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(!stdout(&kubesigner(&["token", "list", "--config", &config])).contains(id));
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    for args in [
        &["--groups", "system:masters"][..],
        &["--node-name-pattern", "node-[a"],
        &["--ttl", "0s"],
    ] {
        let mut all = vec!["token", "create", "--config", &config];
        all.extend_from_slice(args);
        let out = kubesigner(&all);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(out.stdout.is_empty());
    }
    let bad_id = kubesigner(&["token", "delete", "--config", &config, "ABC"]);
    assert_eq!(bad_id.status.code(), Some(64));
    let absent = dir.path().join("absent.toml");
    let missing = kubesigner(&["token", "list", "--config", absent.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(66));
}

#[test]
fn auth_section_parses_and_loads_the_seed_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tokens.csv");
    std::fs::write(
        &csv,
        "02b50b05283e98dd0fd71db496ef01e8,kubelet-bootstrap,10001,\"system:kubelet-bootstrap\"\n",
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[auth]\ntoken_auth_file = {:?}\nadmin_users = [\"root-admin\"]\n",
            csv.to_str().unwrap()
        ),
    );
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let cfg = Config::load(Path::new(&config)).unwrap();
    assert_eq!(cfg.auth.admin_groups, ["system:masters"]);
    assert_eq!(cfg.auth.admin_users, ["root-admin"]);
    let authn = Authenticator::new(&cfg.auth, &dir.path().join("data")).unwrap();
    let out = authn.authenticate(
        None,
        Some(b"Bearer 02b50b05283e98dd0fd71db496ef01e8"),
        SystemTime::now(),
    );
    assert!(matches!(out, AuthnOutcome::Authenticated(i) if i.user == "kubelet-bootstrap"));
    // Unknown keys in [auth] are refused.
    let bad = write_config(dir.path(), "[auth]\ntoken_file = \"x\"\n");
    assert!(Config::load(Path::new(&bad)).is_err());
}

#[test]
fn missing_data_dir_is_created_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = kubesigner(&["token", "list", "--config", &config]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
    assert!(dir.path().join("data/kubesigner.db").exists());
}

/// A token command that creates the store creates it owner-only, as `serve` does, whatever the
/// umask: the file holds the token hashes.
#[test]
fn a_token_command_creates_the_store_owner_only_under_umask_022() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let out = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_kubesigner"))
        .args(["token", "create", "--config", &config, "--ttl", "1h"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["kubesigner.db", "kubesigner.db-wal", "kubesigner.db-shm"] {
        let p = dir.path().join("data").join(name);
        if name == "kubesigner.db" || p.exists() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
}

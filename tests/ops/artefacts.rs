//! The shipped artefacts work as shipped: the systemd unit's `LoadCredential=` name is the one
//! the program reads (serve starts with only `$CREDENTIALS_DIRECTORY` holding the PIN), core
//! dumps are off, and every file the appliance writes with token hashes, CSRs or the audit
//! chain is 0600 (its directories 0700) under umask 022. About 10 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{appliance, ops};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ops::{Served, kubectl_ok};

fn repo_file(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// `LoadCredential=NAME:PATH` lines of a unit file: the names.
fn credential_names(unit: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix("LoadCredential="))
        .map(|v| v.split(':').next().unwrap().to_owned())
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The config's `key` without its `pin-source` (the systemd way: the PIN is a credential).
fn without_pin_source(config: &str) -> String {
    config
        .lines()
        .map(|l| match l.strip_prefix("key = \"") {
            Some(uri) if uri.contains("pin-source=") => {
                let uri = uri.trim_end_matches('"');
                let (path, query) = uri.split_once('?').unwrap();
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|kv| !kv.starts_with("pin-source="))
                    .collect();
                format!("key = \"{path}?{}\"", kept.join("&"))
            }
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn shipped_unit_credential_name_starts_serve() {
    for unit in [
        "systemd/kubesigner.service",
        "systemd/kubesigner-controller.service",
    ] {
        let text = repo_file(unit);
        let names: Vec<String> = credential_names(&text)
            .into_iter()
            .filter(|n| n != "kubeconfig")
            .collect();
        assert_eq!(names, ["pkcs11-pin"], "{unit}: PIN credential");
        assert!(text.contains("\nLimitCORE=0\n"), "{unit} lacks LimitCORE=0");
    }
    let names = credential_names(&repo_file("systemd/kubesigner.service"));
    let example = repo_file("systemd/kubesigner.example.toml");
    assert!(
        example.contains(&format!("$CREDENTIALS_DIRECTORY/{}", names[0])),
        "the example config names another credential than the unit's {names:?}"
    );

    let mut s = Served::setup("");
    let pin = std::fs::read(s.state().join("pin")).unwrap();
    let cfg = s.state().join("credential.toml");
    let text = without_pin_source(&std::fs::read_to_string(s.config()).unwrap());
    assert!(
        text.lines()
            .any(|l| l.starts_with("key = ") && !l.contains("pin-source")),
        "{text}"
    );
    std::fs::write(&cfg, text).unwrap();
    // Only the credentials directory holds the PIN: the dev PIN file is moved away.
    std::fs::remove_file(s.state().join("pin")).unwrap();
    let creds = s.dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    for n in &names {
        let f = creds.join(n);
        std::fs::write(&f, &pin).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    let mut cmd = Command::new(appliance::bin());
    cmd.env("CREDENTIALS_DIRECTORY", &creds);
    s.start_command(cmd, &cfg);
    kubectl_ok(&s.admin(), &["get", "csr"]);

    // PR_SET_DUMPABLE 0 and RLIMIT_CORE 0 in the running service.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
        ["0", "0"],
        "{core}"
    );
    s.stop();

    // Without the credential the same configuration refuses to start (64).
    let out = Command::new(appliance::bin())
        .args(["serve", "--allow-root", "--config"])
        .arg(&cfg)
        .env("CREDENTIALS_DIRECTORY", s.dir.path().join("empty"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
}

/// Runs `kubesigner ARGS` under umask 022.
fn umask_022() -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "umask 022; exec \"$@\"", "sh", appliance::bin()]);
    c
}

#[test]
fn store_wal_and_backup_are_owner_only_under_umask_022() {
    let mut s = Served::setup("");
    let data = s.dir.path().join("fresh").join("data");
    let cfg = s.state().join("fresh.toml");
    let text: String = std::fs::read_to_string(s.config())
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("data_dir = ") {
                format!("data_dir = \"{}\"\n", data.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&cfg, text).unwrap();
    s.start_command(umask_022(), &cfg);
    s.create_csr("modes", "node-modes");
    for (p, want) in [
        (data.clone(), 0o700),
        (data.join("kubesigner.db"), 0o600),
        (data.join("kubesigner.db-wal"), 0o600),
        (data.join("kubesigner.db-shm"), 0o600),
    ] {
        assert_eq!(mode(&p), want, "{}", p.display());
    }
    let out_dir = s.dir.path().join("backups");
    std::fs::create_dir(&out_dir).unwrap();
    let backup = out_dir.join("store.backup");
    let out = umask_022()
        .args(["backup", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&backup), 0o600, "backup --out");
    s.stop();
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
    }
}

//! `kubesigner controller` start-up checks: root refused without --allow-root, a bad
//! configuration or kubeconfig exits 64 before any network or token work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::tools;

use std::path::Path;
use std::process::Command;

use tools::bin;

fn run(config: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin())
        .arg("controller")
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A config whose token and CA do not exist: only reached if the checks let it through.
fn config(dir: &Path, controller: &str) -> std::path::PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            "data_dir = \"d\"\n[signer]\nkey = \"pkcs11:token=none;object=none?module-path=/nonexistent.so\"\n\
             [ca]\ncert_file = \"ca.crt\"\n[controller]\n{controller}\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn root_is_refused_without_allow_root() {
    if !rustix_is_root() {
        return; // Only meaningful as root (CI runs as root).
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(&config(dir.path(), ""), &[]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("root"), "{err}");
}

fn rustix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn bad_controller_settings_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\n").unwrap();
    let kcline = format!("kubeconfig = {:?}", kc.to_str().unwrap());
    for (section, needle) in [
        (
            "lease_duration = \"1s\"\nrenew_deadline = \"2s\"",
            "renew_deadline",
        ),
        ("signers = [\"kube-apiserver-client\"]", "signer"),
        ("bogus = 1", "bogus"),
        (
            "[controller.bootstrap_token_nodes]\n\"NOTANID\" = \"n*\"",
            "NOTANID",
        ),
        ("mode = \"both\"", "mode"),
        (
            "mode = \"active-active\"\nidentity = \"Host_1\"",
            "names this replica's Lease",
        ),
    ] {
        let (code, err) = run(
            &config(dir.path(), &format!("{kcline}\n{section}")),
            &["--allow-root"],
        );
        assert_eq!(code, Some(64), "{section}: {err}");
        assert!(err.contains(needle), "{section}: {err}");
    }
}

#[test]
fn bad_mode_flag_exits_64_and_the_flag_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    std::fs::write(&kc, "apiVersion: v1\nkind: Config\n").unwrap();
    let kcline = format!("kubeconfig = {:?}", kc.to_str().unwrap());
    let (code, err) = run(
        &config(dir.path(), &kcline),
        &["--allow-root", "--mode", "sideways"],
    );
    assert_eq!(code, Some(2), "clap refuses an unknown mode: {err}");
    assert!(err.contains("active-active"), "{err}");
    // The file's identity is fine for leader mode; --mode active-active makes it a Lease name.
    let (code, err) = run(
        &config(dir.path(), &format!("{kcline}\nidentity = \"Host_1\"")),
        &["--allow-root", "--mode", "active-active"],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("Host_1"), "{err}");
}

#[test]
fn missing_or_broken_kubeconfig_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(&config(dir.path(), ""), &["--allow-root"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("kubeconfig"), "{err}");
    let broken = dir.path().join("broken");
    std::fs::write(&broken, "{{{ not yaml").unwrap();
    let (code, err) = run(
        &config(dir.path(), ""),
        &["--allow-root", "--kubeconfig", broken.to_str().unwrap()],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("kubeconfig"), "{err}");
}

#[test]
fn controller_unit_exposure_at_most_1_5() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/kubesigner-controller.service");
    if !tools::require("systemd-analyze", &["--version"], "systemd") {
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in: {text}"));
    eprintln!("systemd-analyze security (controller unit): {score}");
    assert!(score <= 1.5, "exposure {score}");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(unit_text.contains("LoadCredential=kubeconfig:"));
    assert!(unit_text.contains("RestartPreventExitStatus=64"));
    assert!(unit_text.contains("LoadCredential=pkcs11-pin:"));
    assert!(unit_text.contains("\nLimitCORE=0\n"));
}

//! What an operator meets at an upgrade or a downgrade: `--version` names the release and the
//! commit; a store written by a newer release stops `serve` with one clear line and exit 64
//! (the unit's RestartPreventExitStatus: no restart loop). Older stores migrating forward are
//! tested per schema version in `src/store/schema_tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/appliance.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

#[test]
fn version_names_the_release_and_the_commit() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!("kubesigner {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&want), "{text}");
    let rev = text.trim().trim_start_matches(&want).trim_end_matches(')');
    assert!(
        rev == "unknown" || (rev.len() == 12 && rev.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
}

fn find_db(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.is_dir() {
            if let Some(found) = find_db(&p) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == "kubesigner.db") {
            return Some(p);
        }
    }
    None
}

#[test]
fn a_store_from_a_newer_release_stops_serve_with_one_line() {
    let mut a = Appliance::start();
    a.stop();
    let db = find_db(&a.state()).expect("dev made a store");
    // As a future release would leave it.
    let changed = rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE schema_version SET version = 999 WHERE component = 'store'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let out = Command::new(bin())
        .args(["serve", "--allow-root", "--config"])
        .arg(a.state().join("kubesigner.toml"))
        .current_dir(a.state())
        .env("KUBESIGNER_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("schema is version 999, newer than this kubesigner knows"),
        "{stderr}"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs promtool (Debian's `prometheus` package; scripts/setup-host installs it).
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo().join("deploy/prometheus"))
        .output()
        .expect("promtool (apt: prometheus) is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn alert_rules_check_and_their_unit_tests_pass() {
    let checked = promtool(&["check", "rules", "kubesigner.rules.yml"]);
    assert!(checked.contains("SUCCESS: 14 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "kubesigner.rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

//! What an operator meets at an upgrade or a downgrade: `--version` names the release and the
//! commit; a store written by a newer release stops `serve` with one clear line and exit 64
//! (the unit's RestartPreventExitStatus: no restart loop). Older stores migrating forward are
//! tested per schema version in `src/store/schema/tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::path::{Path, PathBuf};
use std::process::Command;

use appliance::*;

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
    assert!(checked.contains("SUCCESS: 15 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "kubesigner.rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every sample name a scrape can carry, from its `# TYPE` lines (a family with no sample yet,
/// such as a labelled counter nothing has counted, still declares its type).
fn exported_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (f.next(), f.next(), f.next(), f.next())
        {
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for s in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{s}"));
                    }
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

/// The `kubesigner_*` names a file's queries use.
fn used_names(path: &Path) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("kubesigner_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn dashboard_and_rules_name_only_exported_metrics() {
    let a = Appliance::start();
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(a.state().join("ca.crt"))
        .arg(format!("https://{}/metrics", a.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = exported_names(&String::from_utf8(out.stdout).unwrap());
    let dashboard = used_names(&repo().join("deploy/grafana/kubesigner.json"));
    let rules = used_names(&repo().join("deploy/prometheus/kubesigner.rules.yml"));
    assert!(
        dashboard.len() >= 15 && rules.len() >= 10,
        "{dashboard:?} {rules:?}"
    );
    for name in dashboard.iter().chain(&rules) {
        assert!(
            exported.contains(name),
            "{name} is not exported; /metrics has {exported:?}"
        );
    }
    // The dashboard shows what the issue asks for: token health, sign latency, sessions,
    // slots, backlog, certificate expiry, issuance rate and latency.
    for name in [
        "kubesigner_hsm_up",
        "kubesigner_token_sign_seconds_bucket",
        "kubesigner_token_sessions_in_use",
        "kubesigner_requests_in_flight",
        "kubesigner_approved_unsigned_csrs",
        "kubesigner_ca_not_after_timestamp_seconds",
        "kubesigner_serving_cert_not_after_timestamp_seconds",
        "kubesigner_http_requests_total",
        "kubesigner_issuance_seconds_bucket",
    ] {
        assert!(dashboard.contains(name), "dashboard lacks {name}");
    }
}

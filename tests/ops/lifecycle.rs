//! Operations checks: the systemd unit's exposure score, `Type=notify` readiness and the
//! watchdog ping, the root refusal, and a bad configuration exiting 64 before binding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;
use crate::support::tools::assert_one_line_64;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The highest `systemd-analyze security` exposure the shipped unit may have.
const MAX_EXPOSURE: f64 = 1.5;

use appliance::{bin, tools};

#[test]
fn systemd_unit_exposure_at_most_1_5() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/kubesigner.service");
    if !tools::require("systemd-analyze", &["--version"], "systemd") {
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no score in: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score from {line:?}"));
    eprintln!("systemd-analyze security: {score}");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{text}"
    );
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "RestartPreventExitStatus=64",
        "LoadCredential=pkcs11-pin:",
        "LimitCORE=0",
        "DevicePolicy=closed",
    ] {
        assert!(unit_text.contains(needed), "the unit lacks {needed}");
    }
}

#[test]
fn serve_refuses_root_without_allow_root() {
    let dir = tempfile::tempdir().unwrap();
    // A valid-looking config is not even read: the refusal comes first.
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(dir.path().join("kubesigner.toml"))
        .output()
        .unwrap();
    if rustix::process::geteuid().is_root() {
        assert_one_line_64(&out, "refusing to run as root");
    } else {
        // Not uid 0: no refusal; the missing configuration is what stops it.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("refusing to run as root"), "{err}");
        assert_eq!(out.status.code(), Some(64), "{err}");
    }
}

#[test]
fn serve_bad_config_exits_64_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let cfg = dir.path().join("kubesigner.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = \".\"\nbogus_key = 1\n[server]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["serve", "--allow-root", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_one_line_64(&out, "bad configuration");
    // Nothing ever listened: the port is still free.
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

/// `Type=notify`: READY=1 once the signer and store are up, then WATCHDOG=1 pings while the
/// health check passes (WATCHDOG_USEC=1s → a ping every 0.5 s).
#[test]
fn serve_notifies_ready_and_pings_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin())
        .arg("dev")
        .arg("--dir")
        .arg(dir.path().join("state"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        let Ok(n) = sock.recv(&mut buf) else { break };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        seen.push(msg);
        if seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2 {
            break;
        }
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let first_ready = seen.iter().position(|m| m.contains("READY=1"));
    let first_ping = seen.iter().position(|m| m.contains("WATCHDOG=1"));
    assert!(first_ready.is_some(), "no READY=1 in {seen:?}");
    assert!(
        first_ping > first_ready,
        "watchdog before READY or missing: {seen:?}"
    );
    assert!(
        seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2,
        "the watchdog is not pinged repeatedly: {seen:?}"
    );
}

//! Request ids: a sane `X-Request-Id` (≤ 64 of `[A-Za-z0-9-]`) is kept, anything else replaced
//! by a generated one; the id is in the response header, in the JSON log's request span and in
//! the audit record of the change the request made. `[server] log_format = "json"` turns on
//! JSON logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::ops;

use std::process::Command;

use ops::Served;

/// The response's `x-request-id` for a request sending `given` (if any).
fn echoed(s: &Served, given: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-D", "-", "--cacert"])
        .arg(s.state().join("ca.crt"));
    if let Some(g) = given {
        cmd.args(["-H", &format!("X-Request-Id: {g}")]);
    }
    let out = cmd
        .arg(format!("https://{}/healthz", s.addr))
        .output()
        .unwrap();
    let headers = String::from_utf8(out.stdout).unwrap();
    headers
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no x-request-id in {headers}"))
        .trim()
        .to_owned()
}

#[test]
fn request_ids_are_kept_or_generated_and_reach_logs_and_audit() {
    let mut s = Served::setup("");
    // JSON logs from `[server] log_format` (no --log-format flag).
    let cfg = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(
        s.config(),
        cfg.replacen("[server]\n", "[server]\nlog_format = \"json\"\n", 1),
    )
    .unwrap();
    s.start();
    assert!(
        s.log().lines().any(|l| l.starts_with("{\"timestamp\"")),
        "{}",
        s.log()
    );
    assert_eq!(echoed(&s, Some("abc-DEF-123")), "abc-DEF-123");
    for bad in ["has space", "semi;colon", &"x".repeat(65)] {
        let id = echoed(&s, Some(bad));
        assert_eq!(id.len(), 32, "{bad:?} → {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let a = echoed(&s, None);
    assert_ne!(a, echoed(&s, None));

    s.create_csr("rid-one", "node1");
    let export = s.export();
    let rec: serde_json::Value = export
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["kind"] == "create")
        .unwrap();
    let id = rec["request_id"].as_str().unwrap().to_owned();
    // The JSON log line of that audit record carries the same id in its request span.
    let line = s
        .log()
        .lines()
        .find(|l| l.contains("\"csr\":\"rid-one\"") && l.contains("audit"))
        .unwrap_or_else(|| panic!("no audit line:\n{}", s.log()))
        .to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["span"]["request_id"], id.as_str(), "{line}");
}

//! The tamper-evident audit log end to end: CSR create / approve / deny / issue against a running
//! `kubesigner dev`, `kubesigner audit export` while it runs, `kubesigner audit verify` accepts
//! the export and rejects an edit, a deletion, a reorder and (against the head hash from the
//! appliance's log) a truncation; the table itself refuses UPDATE and DELETE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use std::process::{Command, Output};

use appliance::*;

fn create_csr(a: &Appliance, name: &str, node: &str) {
    create_serving_csr(a.dir.path(), &a.admin_kubeconfig(), name, node);
}

fn verify(path: &std::path::Path, head: Option<&str>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["audit", "verify"]).arg(path);
    if let Some(h) = head {
        cmd.args(["--head", h]);
    }
    cmd.output().unwrap()
}

/// `kubesigner audit export` of the running appliance's store (JSON lines).
fn export(a: &Appliance) -> String {
    let out = Command::new(bin())
        .args(["audit", "export", "--config"])
        .arg(a.state().join("kubesigner.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_rejected(a: &Appliance, name: &str, text: &str, head: Option<&str>, needle: &str) {
    let p = a.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    let out = verify(&p, head);
    let msg = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(65), "{name}: {msg}");
    assert!(msg.contains(needle), "{name}: {msg:?} lacks {needle:?}");
}

#[test]
fn audit_export_verifies_and_detects_tampering() {
    let a = Appliance::start();
    create_csr(&a, "audit-one", "node1");
    create_csr(&a, "audit-two", "node2");
    kubectl_ok(
        &a.admin_kubeconfig(),
        &["certificate", "approve", "audit-one"],
    );
    kubectl_ok(&a.admin_kubeconfig(), &["certificate", "deny", "audit-two"]);
    kubectl_ok(&a.admin_kubeconfig(), &["delete", "csr", "audit-two"]);
    let disabled = Command::new(bin())
        .args(["node", "disable", "node9", "--config"])
        .arg(a.state().join("kubesigner.toml"))
        .output()
        .unwrap();
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );

    let export = export(&a);
    let lines: Vec<&str> = export.lines().collect();
    assert!(lines.len() >= 5, "too few records:\n{export}");
    for kind in [
        "\"create\"",
        "\"approve\"",
        "\"deny\"",
        "\"delete\"",
        "\"node-disable\"",
        "audit-two",
    ] {
        assert!(export.contains(kind), "{kind} missing:\n{export}");
    }
    // The head hash logged with the newest record (the outside copy): the node change was made
    // by the CLI, so its record's hash is in the CLI's log.
    let log = a.log() + &String::from_utf8_lossy(&disabled.stderr);
    let head = log
        .lines()
        .rev()
        .filter_map(|l| l.split("head=").nth(1))
        .find_map(|h| h.split_whitespace().next())
        .unwrap_or_else(|| panic!("no head= in the log:\n{log}"))
        .to_owned();
    assert!(
        lines.last().unwrap().contains(&head),
        "the logged head is not the newest record"
    );
    let p = a.dir.path().join("export.jsonl");
    std::fs::write(&p, &export).unwrap();
    let ok = verify(&p, Some(&head));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let edited = export.replacen("audit-one", "audit-0ne", 1);
    assert_rejected(&a, "edited.jsonl", &edited, None, "edited");
    let mut deleted = lines.clone();
    deleted.remove(1);
    assert_rejected(
        &a,
        "deleted.jsonl",
        &(deleted.join("\n") + "\n"),
        None,
        "deleted or reordered",
    );
    let mut reordered = lines.clone();
    reordered.swap(1, 2);
    assert_rejected(
        &a,
        "reordered.jsonl",
        &(reordered.join("\n") + "\n"),
        None,
        "reordered",
    );
    let truncated = lines[..lines.len() - 1].join("\n") + "\n";
    assert_rejected(&a, "truncated.jsonl", &truncated, Some(&head), "truncated");

    // Append-only at the table: UPDATE and DELETE abort.
    let db = rusqlite::Connection::open(a.state().join("state/kubesigner.db")).unwrap();
    let upd = db.execute("UPDATE audit_events SET actor = 'x' WHERE seq = 1", []);
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = db.execute("DELETE FROM audit_events WHERE seq = 1", []);
    assert!(del.unwrap_err().to_string().contains("append-only"));
}

/// A create approved and issued in one transaction is one log line for its three records: the
/// outside copy of the head must be the hash of the last (`issue`), with the first record's
/// sequence number and the asking node as the actor; no line of its own for the other two.
#[test]
fn a_create_signed_at_once_logs_one_line_with_the_head_after_its_last_record() {
    let a = Appliance::start();
    let (_, pem) = openssl_csr(
        a.dir.path(),
        "oneline",
        "/O=system:nodes/CN=system:node:oneline-node",
        None,
    );
    let manifest = csr_manifest(
        "oneline",
        &pem,
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
    );
    create_csr_as(
        a.dir.path(),
        &a.bootstrap_kubeconfig(),
        "oneline",
        &manifest,
    );

    let export = export(&a);
    let records: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["csr_name"] == "oneline")
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["create", "approve", "issue"], "{export}");
    let (first, last) = (&records[0], &records[2]);
    // The hash of a record is the next record's prev_hash; the last one's is the head now.
    let lines: Vec<&str> = export.lines().collect();
    let last_pos = lines
        .iter()
        .position(|l| serde_json::from_str::<serde_json::Value>(l).unwrap() == *last)
        .unwrap();
    assert_eq!(
        last_pos,
        lines.len() - 1,
        "the issue record is not the newest:\n{export}"
    );

    // The log line may follow the answer by a moment (the writer logs after the commit).
    let mut log = String::new();
    let found = crate::support::tools::poll(std::time::Duration::from_secs(10), || {
        log = a.log();
        log.lines()
            .any(|l| l.contains("first_seq=") && l.contains("oneline"))
    });
    assert!(found, "no one-line audit record for the create:\n{log}");
    let mine: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("head=") && l.contains("oneline"))
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "one audit line per create, got:\n{}",
        mine.join("\n")
    );
    let line = mine[0];
    let field = |name: &str| -> String {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {line}"))
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(field("seq"), last["seq"].to_string(), "{line}");
    assert_eq!(field("first_seq"), first["seq"].to_string(), "{line}");
    assert_eq!(field("kinds"), "create,approve,issue", "{line}");
    assert_eq!(field("actor"), first["actor"].as_str().unwrap(), "{line}");
    assert!(field("actor").starts_with("system:bootstrap:"), "{line}");
    // The logged head verifies the export (and a truncation of the issue record would not).
    let p = a.dir.path().join("oneline.jsonl");
    std::fs::write(&p, &export).unwrap();
    let head = field("head");
    assert_eq!(last["hash"].as_str(), Some(head.as_str()), "{line}");
    let ok = verify(&p, Some(&head));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let truncated = lines[..lines.len() - 1].join("\n") + "\n";
    assert_rejected(
        &a,
        "oneline-cut.jsonl",
        &truncated,
        Some(&head),
        "truncated",
    );
}

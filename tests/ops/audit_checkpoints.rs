//! Signed audit checkpoints against a real SoftHSM token: `kubesigner serve` signs the head
//! with the audit key (`dev` generated it) every few records, appends the checkpoint to the
//! chain and writes `kubesigner-audit-checkpoint …` to stderr (the system log). `audit verify
//! --config --checkpoints LOG` checks the signatures and finds every logged checkpoint; a tail
//! cut off after a checkpoint, and a re-written chain with a forged checkpoint signature, are
//! rejected although the chain alone verifies. Token create / delete are recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::ops;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use kubesigner::audit::{AuditRecord, record_hash};
use ops::Served;

const MARKER: &str = "kubesigner-audit-checkpoint seq=";

fn verify(s: &Served, export: &Path, config: Option<&Path>, log: Option<&Path>) -> Output {
    let mut args = vec!["audit".to_owned(), "verify".to_owned()];
    args.push(export.to_str().unwrap().to_owned());
    if let Some(c) = config {
        args.extend(["--config".to_owned(), c.to_str().unwrap().to_owned()]);
    }
    if let Some(l) = log {
        args.extend(["--checkpoints".to_owned(), l.to_str().unwrap().to_owned()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cli(&refs)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn write(s: &Served, name: &str, body: &str) -> std::path::PathBuf {
    let p = s.dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn records(export: &str) -> Vec<AuditRecord> {
    export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn lines(rs: &[AuditRecord]) -> String {
    rs.iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn checkpoints_are_signed_logged_and_catch_truncation_and_forgery() {
    let mut s = Served::setup(
        "\n[audit]\ncheckpoint_every = 2\ncheckpoint_interval = \"0s\"\npublic_key_file = \"audit-key.pem\"\n",
    );
    assert!(
        s.state().join("audit-key.pem").exists(),
        "dev wrote no audit-key.pem"
    );
    let cfg = s.config();
    // Token create / delete go into the chain (before serve: the CLI writes them).
    let created = s.cli(&["token", "create", "--config", cfg.to_str().unwrap()]);
    assert!(created.status.success(), "{}", text(&created));
    let token = String::from_utf8(created.stdout).unwrap();
    let id = token.trim().split('.').next().unwrap().to_owned();
    let deleted = s.cli(&["token", "delete", "--config", cfg.to_str().unwrap(), &id]);
    assert!(deleted.status.success(), "{}", text(&deleted));

    s.start();
    s.create_csr("cp-one", "node1");
    s.create_csr("cp-two", "node2");
    s.wait_log(MARKER, 1, Duration::from_secs(15));
    s.create_csr("cp-three", "node3");
    kubectl_ok_approve(&s, "cp-three");
    s.wait_log(MARKER, 2, Duration::from_secs(15));
    let export = s.export();
    let log = write(&s, "system.log", &s.log());

    let rs = records(&export);
    let by_kind = |k: &str| rs.iter().filter(|r| r.kind == k).count();
    assert!(by_kind("checkpoint") >= 2, "{export}");
    // `dev` made one bootstrap token, the test another (then deleted it).
    assert_eq!(by_kind("token-create"), 2, "{export}");
    let del = rs.iter().find(|r| r.kind == "token-delete").unwrap();
    assert_eq!(
        (del.csr_name.as_str(), del.actor.as_str()),
        (id.as_str(), "kubesigner-cli")
    );
    let issued = rs.iter().find(|r| r.kind == "issue").unwrap();
    // Up to 128 random bits, positive, DER-minimal: 1 to 17 bytes of hex (RFC 5280: ≤ 20).
    let serial = issued.serial.as_deref().unwrap_or_default();
    assert!(
        (2..=34).contains(&serial.len()) && serial.len() % 2 == 0 && hex::decode(serial).is_ok(),
        "{export}"
    );
    assert_eq!(issued.outcome.as_deref(), Some("issued"));
    // The fuller records: who (groups), request id, requested subject and SANs, serial, outcome.
    let create = rs.iter().find(|r| r.kind == "create").unwrap();
    assert_eq!(
        create.subject.as_deref(),
        Some("CN=system:node:node1,O=system:nodes")
    );
    assert_eq!(
        create.sans.as_deref(),
        Some(&["DNS:node1.example.com".to_owned()][..])
    );
    assert!(
        create
            .groups
            .as_ref()
            .unwrap()
            .iter()
            .any(|g| g == "system:masters")
    );
    assert_eq!(create.request_id.as_ref().map(String::len), Some(32));
    assert_eq!(create.outcome.as_deref(), Some("pending"));

    // Whole export: chain, signatures (key from audit-key.pem), logged checkpoints.
    let full = write(&s, "export.jsonl", &export);
    let ok = verify(&s, &full, Some(&cfg), Some(&log));
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("signatures verified"), "{}", text(&ok));

    // Cut after the first checkpoint: the chain alone verifies, the logged copy does not.
    let first_cp = rs.iter().position(|r| r.kind == "checkpoint").unwrap();
    let cut = write(&s, "cut.jsonl", &lines(&rs[..=first_cp]));
    let chain_only = verify(&s, &cut, None, None);
    assert!(chain_only.status.success(), "{}", text(&chain_only));
    let caught = verify(&s, &cut, Some(&cfg), Some(&log));
    assert_eq!(caught.status.code(), Some(65), "{}", text(&caught));
    assert!(text(&caught).contains("truncated"), "{}", text(&caught));

    // A re-written chain with a forged checkpoint signature: every hash recomputed, so the
    // chain verifies; the signature does not. (Up to the next checkpoint, which would name a
    // hash the re-written chain no longer has.)
    let second_cp = first_cp
        + 1
        + rs[first_cp + 1..]
            .iter()
            .position(|r| r.kind == "checkpoint")
            .unwrap();
    let mut forged = rs[..second_cp].to_vec();
    let cp = forged[first_cp].checkpoint.as_mut().unwrap();
    let mut sig = hex::decode(&cp.sig).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    cp.sig = hex::encode(sig);
    for i in first_cp..forged.len() {
        if i > 0 {
            forged[i].prev_hash = forged[i - 1].hash.clone();
        }
        forged[i].hash = record_hash(&forged[i]);
    }
    let forged_p = write(&s, "forged.jsonl", &lines(&forged));
    assert!(verify(&s, &forged_p, None, None).status.success());
    let bad = verify(&s, &forged_p, Some(&cfg), None);
    assert_eq!(bad.status.code(), Some(65), "{}", text(&bad));
    assert!(text(&bad).contains("signature"), "{}", text(&bad));

    // An orderly stop signs a last checkpoint of everything recorded.
    s.create_csr("cp-last", "node4");
    s.stop();
    let after = records(&s.export());
    let last = after.last().unwrap();
    assert_eq!(last.kind, "checkpoint", "{last:?}");
    assert_eq!(last.checkpoint.as_ref().unwrap().seq, last.seq - 1);
    let log2 = write(&s, "system2.log", &s.log());
    let full2 = write(&s, "export2.jsonl", &lines(&after));
    // The audit key read from the token itself gives the same verdicts.
    let token_cfg = s.state().join("token-key.toml");
    let c = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("public_key_file = \"audit-key.pem\"\n", "");
    std::fs::write(&token_cfg, c).unwrap();
    let ok = verify(&s, &full2, Some(&token_cfg), Some(&log2));
    assert!(ok.status.success(), "{}", text(&ok));
    // The pre-stop export lacks the final checkpoint the log now has.
    let stale = verify(&s, &full, Some(&token_cfg), Some(&log2));
    assert_eq!(stale.status.code(), Some(65), "{}", text(&stale));
    let bad = verify(&s, &forged_p, Some(&token_cfg), None);
    assert_eq!(bad.status.code(), Some(65), "{}", text(&bad));
}

fn kubectl_ok_approve(s: &Served, name: &str) {
    ops::kubectl_ok(&s.admin(), &["certificate", "approve", name]);
}

/// `audit verify --config` checks the checkpoint cadence (here at most 3 + 1 records between
/// checkpoints: the test waits for each checkpoint after 3 creates, so every stretch is the
/// checkpoint record and 3 creates): a chain re-written without one of its checkpoints (and a
/// CSR's record, every hash after recomputed, nothing after the next checkpoint kept) verifies
/// alone, but not against `[audit] checkpoint_every` + `checkpoint_slack`.
#[test]
fn a_chain_without_one_of_its_checkpoints_is_rejected() {
    let mut s = Served::setup(
        "\n[audit]\ncheckpoint_every = 3\ncheckpoint_slack = 1\ncheckpoint_interval = \"0s\"\npublic_key_file = \"audit-key.pem\"\n",
    );
    let cfg = s.config();
    s.start();
    // The records `dev` wrote (local commands, not counted) and the serving certificate's
    // are checkpointed at once.
    s.wait_log(MARKER, 1, Duration::from_secs(30));
    for group in 0..3 {
        for i in 0..3 {
            s.create_csr(&format!("cadence-{group}-{i}"), &format!("node{group}x{i}"));
        }
        s.wait_log(MARKER, group + 2, Duration::from_secs(30));
    }
    s.stop();
    let rs = records(&s.export());
    let full = write(&s, "full.jsonl", &lines(&rs));
    let ok = verify(&s, &full, Some(&cfg), None);
    assert!(ok.status.success(), "{}", text(&ok));
    let cps: Vec<usize> = rs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == "checkpoint")
        .map(|(i, _)| i)
        .collect();
    assert!(cps.len() >= 4, "too few checkpoints: {cps:?}");
    // Remove the third checkpoint and the CSR record just before it; keep everything up to
    // the fourth (which names a hash the re-written chain no longer has).
    let (gone, next) = (cps[2], cps[3]);
    let mut cut: Vec<AuditRecord> = rs[..next]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != gone && *i != gone - 1)
        .map(|(_, r)| r.clone())
        .collect();
    for i in 0..cut.len() {
        cut[i].seq = i as u64 + 1;
        cut[i].prev_hash = if i == 0 {
            kubesigner::audit::GENESIS.to_owned()
        } else {
            cut[i - 1].hash.clone()
        };
        cut[i].hash = record_hash(&cut[i]);
    }
    let cut_p = write(&s, "cut.jsonl", &lines(&cut));
    assert!(verify(&s, &cut_p, None, None).status.success());
    let bad = verify(&s, &cut_p, Some(&cfg), None);
    assert_eq!(bad.status.code(), Some(65), "{}", text(&bad));
    assert!(text(&bad).contains("lack a checkpoint"), "{}", text(&bad));
}

//! Unit tests for `audit/checkpoint.rs`.

use super::*;

fn sample() -> LoggedCheckpoint {
    LoggedCheckpoint {
        seq: 42,
        hash: "ab".repeat(32),
        at_unix: 1_700_000_000,
        sig: "3045".to_owned() + &"0f".repeat(40),
    }
}

#[test]
fn log_lines_round_trip_in_text_json_and_journal_form() {
    let c = sample();
    let line = c.line();
    assert_eq!(parse_line(&line), Some(c.clone()));
    let journal = format!("Nov 25 18:00:00 host kubesigner[123]: {line}");
    assert_eq!(parse_line(&journal), Some(c.clone()));
    let json = serde_json::json!({"fields": {"message": line}}).to_string();
    assert_eq!(parse_line(&json), Some(c.clone()));
    let log = format!("noise\n{line}\nmore noise seq=1\n{journal}\n");
    assert_eq!(parse_log(&log), vec![c.clone(), c]);
}

#[test]
fn incomplete_lines_are_ignored() {
    assert_eq!(
        parse_line("kubesigner-audit-checkpoint seq=1 hash=ab"),
        None
    );
    assert_eq!(
        parse_line("kubesigner-audit-checkpoint seq=x hash=ab at=1 sig=00"),
        None
    );
    assert_eq!(parse_line("seq=1 hash=ab at=1 sig=00"), None);
}

#[test]
fn defaults_match_the_documented_ones() {
    let d = AuditConfig::default();
    assert_eq!(d.checkpoint_every, 1000);
    assert_eq!(d.checkpoint_interval, Duration::from_secs(300));
    assert_eq!(d.key_label, "kubesigner-audit");
}

//! Unit tests for `group_sync.rs`.

use super::*;

#[test]
fn a_sync_covers_every_commit_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    std::fs::write(dir.path().join("x.db-wal"), b"frames").unwrap();
    let g = GroupSync::new(&db);
    let a = g.committed().unwrap();
    let b = g.committed().unwrap();
    g.wait_durable(b).unwrap();
    g.wait_durable(a).unwrap();
    assert_eq!(g.counters.lock().unwrap().synced, 2);
}

#[test]
fn a_missing_wal_is_an_error_not_a_silent_ack() {
    let dir = tempfile::tempdir().unwrap();
    let g = GroupSync::new(&dir.path().join("none.db"));
    let s = g.committed().unwrap();
    assert!(matches!(g.wait_durable(s), Err(SyncError::Io { .. })));
}

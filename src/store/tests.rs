//! Store unit tests: durability across reopen, resourceVersions, conflicts, the watch window.

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

pub(super) fn csr(name: &str) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            signer_name: "kubernetes.io/kube-apiserver-client-kubelet".to_owned(),
            username: Some("system:bootstrap:abcdef".to_owned()),
            ..Default::default()
        },
        status: None,
    }
}

fn approve(c: &mut CertificateSigningRequest) -> Result<Option<IssuedRecord>, ()> {
    c.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Approved".to_owned(),
            status: "True".to_owned(),
            ..Default::default()
        }]),
        certificate: None,
    });
    Ok(None)
}

#[test]
fn create_get_survives_reopen_with_rv() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        let a = s.create(csr("a"), &CsrIndex::default(), "t").unwrap();
        assert_eq!(a.metadata.resource_version.as_deref(), Some("1"));
        let b = s.update("a", Some(1), "t", Kind::Approve, approve).unwrap();
        assert_eq!(b.metadata.resource_version.as_deref(), Some("2"));
        s.set_node_disabled("n1", true).unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    let a = s.get("a").unwrap().unwrap();
    assert_eq!(phase(&a), "approved");
    assert_eq!(s.resource_version().unwrap(), 2);
    assert!(s.node_state("n1", 0).unwrap().disabled);
    let c = s.create(csr("c"), &CsrIndex::default(), "t").unwrap();
    assert_eq!(c.metadata.resource_version.as_deref(), Some("3"));
    assert_eq!(s.approved_unsigned().unwrap().len(), 1);
}

#[test]
fn duplicate_create_and_stale_update_refused_without_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.create(csr("a"), &CsrIndex::default(), "t").unwrap();
    assert!(matches!(
        s.create(csr("a"), &CsrIndex::default(), "t"),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        s.update("a", Some(7), "t", Kind::Approve, approve),
        Err(UpdateError::Store(StoreError::Conflict { .. }))
    ));
    let r: Result<_, UpdateError<&str>> = s.update("a", None, "t", Kind::Update, |_| Err("no"));
    assert!(matches!(r, Err(UpdateError::Rejected("no"))));
    assert_eq!(s.resource_version().unwrap(), 1);
    assert_eq!(phase(&s.get("a").unwrap().unwrap()), "pending");
}

#[test]
fn watch_replays_window_and_expires_old() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.create(csr("a"), &CsrIndex::default(), "t").unwrap();
    s.create(csr("b"), &CsrIndex::default(), "t").unwrap();
    s.delete("a", "t").unwrap();
    let sub = s.watch_from(1).unwrap();
    let kinds: Vec<_> = sub
        .replay
        .iter()
        .map(|e| (e.kind, e.resource_version))
        .collect();
    assert_eq!(kinds, vec![(EventKind::Added, 2), (EventKind::Deleted, 3)]);
    drop(sub);
    // A reopened store has no history: anything before now is too old.
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert!(matches!(s.watch_from(1), Err(StoreError::Expired { .. })));
    assert!(s.watch_from(3).unwrap().replay.is_empty());
}

#[test]
fn window_overflow_expires_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.create(csr("x"), &CsrIndex::default(), "t").unwrap();
    for i in 0..(feed::EVENT_WINDOW + 5) {
        s.update("x", None, "t", Kind::Update, |c| {
            c.metadata.labels = Some([("i".to_owned(), i.to_string())].into());
            Ok::<_, ()>(None)
        })
        .unwrap();
    }
    assert!(matches!(s.watch_from(2), Err(StoreError::Expired { .. })));
    let now = s.resource_version().unwrap();
    assert_eq!(s.watch_from(now - 10).unwrap().replay.len(), 10);
}

#[test]
fn issued_records_outlive_csr_and_forget_clears() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.create(csr("a"), &CsrIndex::default(), "t").unwrap();
    s.update("a", None, "kubesigner", Kind::Issue, |_| {
        Ok::<_, ()>(Some(IssuedRecord {
            node_name: "n1".to_owned(),
            serial_hex: "01ab".to_owned(),
            not_after_unix: 2_000,
            issued_unix: 1_000,
        }))
    })
    .unwrap();
    s.delete("a", "t").unwrap();
    assert!(s.node_state("n1", 1_500).unwrap().unexpired_certificate);
    assert!(!s.node_state("n1", 2_500).unwrap().unexpired_certificate);
    assert!(s.forget_node("n1").unwrap());
    assert!(!s.node_state("n1", 1_500).unwrap().unexpired_certificate);
}

#[test]
fn unknown_tables_are_kept_and_schema_rows_coexist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
             INSERT INTO schema_version VALUES ('other_tool', 3);
             CREATE TABLE other_tool (id TEXT); INSERT INTO other_tool VALUES ('x');",
        )
        .unwrap();
    }
    drop(Store::open(dir.path()).unwrap());
    let c = Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM other_tool", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let v: i64 = c
        .query_row(
            "SELECT version FROM schema_version WHERE component = 'other_tool'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, 3);
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn node_state_statements_are_not_reparsed_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    for node in ["n1", "n2", "n3", "n4"] {
        s.node_state(node, 0).unwrap();
    }
    let conn = s.read().unwrap();
    let stmt = conn.prepare_cached(nodes::LATEST_NOT_AFTER).unwrap();
    assert_eq!(
        stmt.get_status(rusqlite::StatementStatus::RePrepare),
        0,
        "the statement is parsed again for each node name"
    );
}

#[test]
fn per_create_and_backlog_queries_search_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let conn = s.read().unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let args = std::iter::repeat_n("n", stmt.parameter_count());
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    let pending = plan(PENDING_FOR_NODE);
    assert!(pending.contains("csrs_node_phase"), "{pending}");
    let backlog = plan(APPROVED);
    assert!(backlog.starts_with("SEARCH"), "{backlog}");
}

#[test]
fn the_store_migrates_the_bootstrap_token_table_and_refuses_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let path = dir.path().join(DB_FILE);
    let c = Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row(
            "SELECT version FROM schema_version WHERE component = 'bootstrap_tokens'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, 1);
    c.execute(
        "UPDATE schema_version SET version = 7 WHERE component = 'bootstrap_tokens'",
        [],
    )
    .unwrap();
    drop(c);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::SchemaTooNew { ref component, found: 7, known: 1 }) if component == "bootstrap_tokens"
    ));
}

use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;

use super::*;

fn open() -> (tempfile::TempDir, BootstrapTokens) {
    let dir = tempfile::tempdir().unwrap();
    let t = BootstrapTokens::open(&dir.path().join("kubesigner.db")).unwrap();
    (dir, t)
}

const DAY: Duration = Duration::from_secs(24 * 3600);

#[test]
fn create_lookup_expire_delete() {
    let (_dir, tokens) = open();
    let now = SystemTime::now();
    let groups = vec!["system:bootstrappers:kubeadm:default-node-token".to_owned()];
    let (id, token) = tokens
        .create(
            DAY,
            groups.clone(),
            "test".into(),
            vec!["node-*".into()],
            now,
        )
        .unwrap();
    let parsed = BootstrapToken::parse(token.expose_secret()).unwrap();
    assert_eq!(parsed.id, id);
    match tokens.lookup(&parsed, now).unwrap() {
        Lookup::Valid(r) => {
            assert_eq!(r.groups, groups);
            assert_eq!(r.node_name_patterns, vec!["node-*".to_owned()]);
            assert_eq!(r.description, "test");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        tokens.lookup(&parsed, now + DAY).unwrap(),
        Lookup::Expired
    ));
    let wrong = BootstrapToken::parse(&format!("{id}.0000000000000000")).unwrap();
    assert!(matches!(
        tokens.lookup(&wrong, now).unwrap(),
        Lookup::WrongSecret
    ));
    assert!(tokens.delete(&id).unwrap());
    assert!(!tokens.delete(&id).unwrap());
    assert!(matches!(
        tokens.lookup(&parsed, now).unwrap(),
        Lookup::UnknownId
    ));
}

#[test]
fn secret_is_never_stored_or_listed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kubesigner.db");
    let tokens = BootstrapTokens::open(&db).unwrap();
    let (_, token) = tokens
        .create(DAY, vec![], String::new(), vec![], SystemTime::now())
        .unwrap();
    let secret = token.expose_secret().split_once('.').unwrap().1.to_owned();
    let listed = format!("{:?}", tokens.list().unwrap());
    assert!(!listed.contains(&secret));
    drop(tokens);
    // Look through every byte SQLite wrote (main file + WAL).
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret found on disk"
        );
    }
}

#[test]
fn create_refuses_bad_input() {
    let (_dir, t) = open();
    let now = SystemTime::now();
    let create = |ttl, groups: &[&str], patterns: &[&str]| {
        t.create(
            ttl,
            groups.iter().map(|s| s.to_string()).collect(),
            String::new(),
            patterns.iter().map(|s| s.to_string()).collect(),
            now,
        )
    };
    assert!(matches!(
        create(Duration::ZERO, &[], &[]),
        Err(AuthnError::InvalidTtl { .. })
    ));
    assert!(matches!(
        create(MAX_TTL + Duration::from_secs(1), &[], &[]),
        Err(AuthnError::InvalidTtl { .. })
    ));
    assert!(matches!(
        create(DAY, &["system:masters"], &[]),
        Err(AuthnError::InvalidGroup { .. })
    ));
    assert!(matches!(
        create(DAY, &[], &["node-[a"]),
        Err(AuthnError::InvalidPattern { .. })
    ));
    assert!(t.list().unwrap().is_empty());
}

#[test]
fn reopen_keeps_tokens_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kubesigner.db");
    let now = SystemTime::now();
    let (id, token) = BootstrapTokens::open(&db)
        .unwrap()
        .create(DAY, vec![], String::new(), vec![], now)
        .unwrap();
    let again = BootstrapTokens::open(&db).unwrap();
    assert_eq!(again.list().unwrap().len(), 1);
    let parsed = BootstrapToken::parse(token.expose_secret()).unwrap();
    assert!(matches!(again.lookup(&parsed, now).unwrap(), Lookup::Valid(r) if r.id == id));
}

#[test]
fn random_tokens_use_the_alphabet() {
    for _ in 0..50 {
        let s = random_token_text(TOKEN_SECRET_LEN).unwrap();
        assert_eq!(s.len(), TOKEN_SECRET_LEN);
        assert!(s.bytes().all(|b| TOKEN_ALPHABET.contains(&b)));
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kubesigner.db");
    drop(BootstrapTokens::open(&db).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE schema_version SET version = 99 WHERE component = 'bootstrap_tokens'",
        [],
    )
    .unwrap();
    drop(conn);
    assert!(matches!(
        BootstrapTokens::open(&db),
        Err(AuthnError::SchemaTooNew {
            found: 99,
            known: 1
        })
    ));
}

#[test]
fn shares_the_file_with_other_components() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kubesigner.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
         INSERT INTO schema_version VALUES ('store', 3);",
    )
    .unwrap();
    drop(conn);
    let tokens = BootstrapTokens::open(&db).unwrap();
    assert!(tokens.list().unwrap().is_empty());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let store: i64 = conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = 'store'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(store, 3);
}

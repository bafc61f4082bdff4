//! A store made by each earlier schema migrates forward on open, keeping its rows; a store
//! from a newer release is refused, never guessed at.

use rusqlite::Connection;

use super::*;
use crate::store::{DB_FILE, Store};

/// A CSR row as every schema since version 1 stores it.
const OLD_ROW: &str = "INSERT INTO csrs (name, uid, resource_version, signer_name, requester,
     subject_cn, node_name, phase, created_unix, object)
     VALUES ('csr-old', 'uid-1', 1, 'kubernetes.io/kube-apiserver-client-kubelet',
     'system:bootstrap:abcdef', 'system:node:n1', 'n1', 'pending', 1700000000,
     '{\"apiVersion\":\"certificates.k8s.io/v1\",\"kind\":\"CertificateSigningRequest\",
       \"metadata\":{\"name\":\"csr-old\",\"uid\":\"uid-1\",\"resourceVersion\":\"1\"},
       \"spec\":{\"request\":\"\",\"signerName\":\"kubernetes.io/kube-apiserver-client-kubelet\",
       \"usages\":[\"client auth\"]}}');
     UPDATE counters SET value = 1 WHERE name = 'resource_version';";

fn version(path: &std::path::Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT version FROM schema_version WHERE component = 'store'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn every_older_schema_migrates_forward_keeping_its_rows() {
    for old in 1..MIGRATIONS.len() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            // The store exactly as the release with `old` migrations left it.
            let mut c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);",
            )
            .unwrap();
            migrate_component(&mut c, COMPONENT, &MIGRATIONS[..old]).unwrap();
            c.execute_batch(OLD_ROW).unwrap();
        }
        assert_eq!(version(&path) as usize, old);
        let store = Store::open(dir.path()).unwrap();
        let csr = store.get("csr-old").unwrap().expect("row kept");
        assert_eq!(csr.metadata.uid.as_deref(), Some("uid-1"));
        assert_eq!(store.resource_version().unwrap(), 1);
        assert_eq!(
            store.pending_for_node("n1").unwrap(),
            1,
            "from version {old}"
        );
        drop(store);
        assert_eq!(
            version(&path) as usize,
            MIGRATIONS.len(),
            "from version {old}"
        );
    }
}

#[test]
fn a_newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let newer = i64::try_from(MIGRATIONS.len()).unwrap() + 1;
    Connection::open(dir.path().join(DB_FILE))
        .unwrap()
        .execute(
            "UPDATE schema_version SET version = ?1 WHERE component = 'store'",
            [newer],
        )
        .unwrap();
    let Err(e) = Store::open(dir.path()) else {
        panic!("a newer schema was opened")
    };
    let text = e.to_string();
    assert!(matches!(e, StoreError::SchemaTooNew { .. }), "{e:?}");
    assert!(
        text.contains(&format!("version {newer}"))
            && text.contains(&format!("({})", MIGRATIONS.len())),
        "{text}"
    );
}

//! Unit tests for `kind.rs`: the written names are the ones the hash covers, both ways.

use super::*;

#[test]
fn serde_writes_and_reads_exactly_as_str() {
    for k in Kind::ALL {
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{}\"", k.as_str()));
        assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), k);
    }
    let names: std::collections::BTreeSet<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), Kind::ALL.len(), "names are distinct");
    assert!(serde_json::from_str::<Kind>("\"issued\"").is_err());
    assert!(serde_json::from_str::<Kind>("\"signature-spent\"").is_err());
}

#[test]
fn signature_kinds_are_the_five_that_sign() {
    let signing: Vec<_> = Kind::ALL.into_iter().filter(|k| k.is_signature()).collect();
    assert_eq!(
        signing,
        [
            Kind::Issue,
            Kind::SignatureSpent,
            Kind::ServingCertificate,
            Kind::AdminCertificate,
            Kind::CaSelfSigned
        ]
    );
}

#[test]
fn a_stored_kind_outside_the_set_is_an_error_that_names_it() {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch("CREATE TABLE t (kind TEXT); INSERT INTO t VALUES ('issue'), ('issue2');")
        .unwrap();
    let mut stmt = db.prepare("SELECT kind FROM t ORDER BY rowid").unwrap();
    let read: Vec<rusqlite::Result<Kind>> = stmt
        .query_map([], |r| r.get::<_, Kind>(0))
        .unwrap()
        .collect();
    assert_eq!(read[0].as_ref().unwrap(), &Kind::Issue);
    let err = read[1].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("unknown audit record kind \"issue2\""),
        "{err}"
    );
}

//! The CSR writer: concurrent creates get their own resourceVersions, events and audit
//! records; a create that fails fails alone; the WAL keeps restarting under steady writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::tests::csr;
use crate::store::{CsrIndex, Store, StoreError};

#[test]
fn concurrent_creates_each_get_their_own_rv_event_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let sub = store.watch_from(0).unwrap();
    let (threads, each) = (8, 40);
    let outcomes: Vec<(Vec<u64>, usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = Arc::clone(&store);
                s.spawn(move || {
                    let (mut rvs, mut dup_ok, mut dup_exists) = (Vec::new(), 0, 0);
                    for i in 0..each {
                        let c = store
                            .create(csr(&format!("t{t}-{i}")), &CsrIndex::default(), "u")
                            .unwrap();
                        rvs.push(c.metadata.resource_version.unwrap().parse().unwrap());
                        // Every thread also races for one shared name, inside the same batches.
                        if i == each / 2 {
                            match store.create(csr("shared"), &CsrIndex::default(), "u") {
                                Ok(c) => {
                                    dup_ok += 1;
                                    rvs.push(c.metadata.resource_version.unwrap().parse().unwrap());
                                }
                                Err(StoreError::AlreadyExists { name }) => {
                                    assert_eq!(name, "shared");
                                    dup_exists += 1;
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    (rvs, dup_ok, dup_exists)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = threads * each + 1;
    assert_eq!(
        outcomes.iter().map(|o| o.1).sum::<usize>(),
        1,
        "exactly one 'shared'"
    );
    assert_eq!(outcomes.iter().map(|o| o.2).sum::<usize>(), threads - 1);
    let mut rvs: Vec<u64> = outcomes.into_iter().flat_map(|o| o.0).collect();
    rvs.sort_unstable();
    let expected: Vec<u64> = (1..=u64::try_from(created).unwrap()).collect();
    assert_eq!(rvs, expected, "distinct, gap-free resourceVersions");
    // One ADDED event per create, in resourceVersion order.
    let mut live = sub.live;
    let events: Vec<u64> = (0..created)
        .map(|_| live.try_recv().unwrap().resource_version)
        .collect();
    assert_eq!(events, expected);
    // One hash-chained "create" record per create, in order, and the chain verifies.
    let records = store.audit_records().unwrap();
    assert_eq!(records.len(), created);
    let text: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    assert_eq!(
        crate::audit::verify(&text, None).unwrap(),
        u64::try_from(created).unwrap()
    );
    assert!(records.iter().all(|r| r.kind == crate::audit::Kind::Create));
}

/// SQLite restarts the WAL (and bumps salt-1 in its header) only when a writer finds it
/// checkpointed to its end; a checkpoint racing steady writers never got there and the WAL
/// grew without bound.
#[test]
fn wal_restarts_under_steady_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let wal = dir.path().join(format!("{}-wal", crate::store::DB_FILE));
    let salt = || {
        let head = std::fs::read(&wal).unwrap_or_default();
        head.get(16..20).map(|b| b.to_vec())
    };
    let until = Instant::now() + Duration::from_millis(2500);
    let salts = std::thread::scope(|s| {
        for t in 0..4 {
            let store = Arc::clone(&store);
            s.spawn(move || {
                let mut i = 0;
                while Instant::now() < until {
                    store
                        .create(csr(&format!("w{t}-{i}")), &CsrIndex::default(), "u")
                        .unwrap();
                    i += 1;
                }
            });
        }
        let mut seen = Vec::new();
        while Instant::now() < until {
            if let Some(s) = salt()
                && seen.last() != Some(&s)
            {
                seen.push(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    });
    assert!(
        salts.len() >= 3,
        "the WAL restarted only {} times in 2.5 s of steady writes",
        salts.len().saturating_sub(1)
    );
}

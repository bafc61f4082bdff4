use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn lease(ns: &str, name: &str, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            ..Default::default()
        }),
    }
}

fn rv(l: &Lease) -> u64 {
    l.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn create_replace_conflict_delete_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.lease_create(lease("kube-system", "l", "a")).unwrap();
    assert!(matches!(
        store.lease_create(lease("kube-system", "l", "b")),
        Err(LeaseError::AlreadyExists { .. })
    ));
    // Same name in another namespace is another lease.
    store.lease_create(lease("other", "l", "x")).unwrap();
    let mut b = lease("kube-system", "l", "b");
    b.metadata.uid = Some("forged".to_owned());
    let b = store.lease_replace(Some(rv(&a)), b).unwrap();
    assert!(rv(&b) > rv(&a));
    assert_eq!(
        b.metadata.uid.as_deref(),
        Some("uid-l"),
        "uid is server-owned"
    );
    assert!(matches!(
        store.lease_replace(Some(rv(&a)), lease("kube-system", "l", "c")),
        Err(LeaseError::Conflict { .. })
    ));
    assert!(matches!(
        store.lease_replace(None, lease("kube-system", "missing", "c")),
        Err(LeaseError::NotFound { .. })
    ));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let got = store.lease_get("kube-system", "l").unwrap().unwrap();
    assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("b"));
    let (all, list_rv) = store.lease_list(None).unwrap();
    assert_eq!(all.len(), 2);
    assert!(list_rv >= rv(&b));
    assert_eq!(store.lease_list(Some("other")).unwrap().0.len(), 1);
    // A delete precondition on a stale resourceVersion is a conflict; the current one deletes.
    assert!(matches!(
        store.lease_delete("kube-system", "l", Some(rv(&b) - 1)),
        Err(LeaseError::Conflict { .. })
    ));
    store
        .lease_delete("kube-system", "l", Some(rv(&b)))
        .unwrap();
    assert!(store.lease_get("kube-system", "l").unwrap().is_none());
    assert!(matches!(
        store.lease_delete("kube-system", "l", None),
        Err(LeaseError::NotFound { .. })
    ));
}

#[test]
fn lease_count_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    {
        // Fill the table directly (one transaction) to stay fast.
        let mut st = store.lock().unwrap();
        let tx = st.conn.transaction().unwrap();
        for i in 0..MAX_LEASES {
            let mut l = lease("ns", &format!("l{i}"), "h");
            write(&tx, "ns", &format!("l{i}"), &mut l).unwrap();
        }
        tx.commit().unwrap();
    }
    assert!(matches!(
        store.lease_create(lease("ns", "one-more", "h")),
        Err(LeaseError::TooMany { max: MAX_LEASES })
    ));
}

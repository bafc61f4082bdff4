use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;

use super::*;
use crate::controller::election::micro_now;

fn member(group: &str, id: &str, renewed: SystemTime, secs: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(member_lease_name(group, id)),
            namespace: Some("kubesigner".into()),
            labels: Some(BTreeMap::from([(MEMBER_LABEL.into(), group.into())])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(id.into()),
            lease_duration_seconds: Some(secs),
            renew_time: Some(micro_now(renewed)),
            ..LeaseSpec::default()
        }),
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn live_members_are_the_unexpired_leases_of_the_group() {
    let now = SystemTime::now();
    let s = Duration::from_secs(1);
    let mut other_group = member("other", "d", now, 3);
    other_group.metadata.name = Some("g-d".into());
    let mut renamed = member("g", "e", now, 3);
    renamed.metadata.name = Some("g-x".into());
    let mut released = member("g", "f", now, 1);
    released.spec.as_mut().unwrap().holder_identity = None;
    let leases = [
        member("g", "c", now - s, 3),
        member("g", "a", now, 3),
        member("g", "b", now - 4 * s, 3), // expired a second ago
        other_group,
        renamed,
        released,
        member("g", "a", now, 3), // listed twice: one member
    ];
    assert_eq!(live_members(&leases, "g", now), ids(&["a", "c"]));
    // Three seconds on, only a's term is left... not even a's.
    assert!(live_members(&leases, "g", now + 3 * s).is_empty());
}

#[test]
fn stale_member_leases_are_the_groups_long_expired_ones_oldest_first() {
    let now = SystemTime::now();
    let h = Duration::from_secs(3600);
    let rv = |mut l: Lease, v: &str| {
        l.metadata.resource_version = Some(v.into());
        l
    };
    let mut released = member("g", "r", now - 3 * h, 1);
    released.spec.as_mut().unwrap().holder_identity = None;
    let leases = [
        rv(member("g", "live", now, 3), "1"),
        rv(member("g", "recent", now - h / 2, 3), "2"), // expired, not for long
        rv(member("g", "old", now - 2 * h, 3), "3"),
        rv(member("g", "older", now - 5 * h, 3), "4"),
        rv(member("other", "old", now - 9 * h, 3), "5"),
        rv(released, "6"),
    ];
    assert_eq!(
        stale_member_leases(&leases, "g", now, h),
        [
            ("g-older".to_owned(), "4".to_owned()),
            ("g-r".to_owned(), "6".to_owned()),
            ("g-old".to_owned(), "3".to_owned()),
        ]
    );
}

#[test]
fn owner_is_deterministic_and_none_without_members() {
    let m = ids(&["r-a", "r-b", "r-c"]);
    assert_eq!(owner("uid-1", &[]), None);
    let o = owner("uid-1", &m).unwrap().to_owned();
    let mut shuffled = m.clone();
    shuffled.reverse();
    assert_eq!(owner("uid-1", &shuffled), Some(o.as_str()));
}

#[test]
fn owners_spread_over_members() {
    let m = ids(&["r-a", "r-b", "r-c"]);
    let mut counts = BTreeMap::new();
    for i in 0..3000 {
        *counts
            .entry(owner(&format!("node/n-{i}"), &m).unwrap())
            .or_insert(0) += 1;
    }
    // Each of three gets about 1000; SHA-256 weights stay well inside ±15 %.
    assert_eq!(counts.len(), 3);
    assert!(
        counts.values().all(|c| (850..=1150).contains(c)),
        "{counts:?}"
    );
}

#[test]
fn may_sign_needs_a_fresh_membership_ownership_and_a_won_claim() {
    let now = Instant::now();
    let members = ids(&["a", "b"]);
    let key = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| owner(k, &members) == Some("a"))
        .unwrap();
    let won = ClaimOutcome::Won {
        resource_version: "9".into(),
    };
    let view = View {
        members: members.clone(),
        until: Some(now + Duration::from_secs(1)),
    };
    assert!(may_sign(&view, "a", &key, now, &won));
    assert!(!may_sign(&view, "a", &key, now, &ClaimOutcome::Lost));
    assert!(!may_sign(&view, "b", &key, now, &won), "b does not own it");
    let closed = View {
        until: Some(now),
        ..view.clone()
    };
    assert!(!may_sign(&closed, "a", &key, now, &won), "window closed");
    let outside = View {
        until: None,
        ..view
    };
    assert!(!may_sign(&outside, "a", &key, now, &won));
    assert!(!View::outside().live(now));
}

#[test]
fn claim_notes_round_trip_and_malformed_ones_are_taken_over() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_765_000_000_123_456);
    let v = ClaimNote::value("r-a", at);
    assert_eq!(v, "r-a/2025-12-06T05:46:40.123456Z");
    assert_eq!(
        ClaimNote::parse(&v),
        Some(ClaimNote {
            holder: "r-a".into(),
            at
        })
    );
    for bad in ["", "r-a", "/2025-12-06T05:46:40Z", "r-a/yesterday"] {
        assert_eq!(ClaimNote::parse(bad), None, "{bad:?}");
        let step = claim_step(
            Some(bad),
            "b",
            &ids(&["a", "b"]),
            at,
            Duration::from_secs(3),
        );
        assert_eq!(step, ClaimStep::Take);
    }
}

#[test]
fn claim_of_a_live_member_is_honoured_for_a_lease_duration() {
    let now = SystemTime::now();
    let lease = Duration::from_secs(3);
    let members = ids(&["a", "b"]);
    let fresh = ClaimNote::value("a", now - Duration::from_secs(1));
    let stale = ClaimNote::value("a", now - Duration::from_secs(4));
    let of_dead = ClaimNote::value("c", now);
    let ours = ClaimNote::value("b", now);
    let step = |v: Option<&str>| claim_step(v, "b", &members, now, lease);
    assert_eq!(step(Some(&fresh)), ClaimStep::Defer { holder: "a".into() });
    assert_eq!(step(Some(&stale)), ClaimStep::Take);
    assert_eq!(step(Some(&of_dead)), ClaimStep::Take);
    assert_eq!(step(Some(&ours)), ClaimStep::Take);
    assert_eq!(step(None), ClaimStep::Take);
}

fn member_set() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::btree_set("[a-z0-9-]{1,12}", 1..8)
        .prop_map(|s| s.into_iter().collect::<Vec<_>>())
}

proptest! {
    #[test]
    fn owner_is_a_member_and_independent_of_order(
        members in member_set(),
        key in "[ -~]{0,40}",
    ) {
        let o = owner(&key, &members).unwrap().to_owned();
        prop_assert!(members.contains(&o));
        let mut rev = members.clone();
        rev.reverse();
        prop_assert_eq!(owner(&key, &rev), Some(o.as_str()));
    }

    #[test]
    fn a_departure_moves_only_the_departed_members_keys(
        members in member_set().prop_filter("two or more", |m| m.len() >= 2),
        gone in any::<prop::sample::Index>(),
        keys in proptest::collection::vec("[a-z0-9/-]{1,30}", 1..64),
    ) {
        let gone = members[gone.index(members.len())].clone();
        let rest: Vec<String> = members.iter().filter(|m| **m != gone).cloned().collect();
        for k in &keys {
            let before = owner(k, &members).unwrap();
            let after = owner(k, &rest).unwrap();
            if before != gone {
                prop_assert_eq!(before, after, "key {} moved although its owner stayed", k);
            }
        }
    }

    #[test]
    fn an_arrival_takes_keys_only_for_itself(
        members in member_set(),
        new in "[a-z0-9-]{13,16}",
        keys in proptest::collection::vec("[a-z0-9/-]{1,30}", 1..64),
    ) {
        let mut grown = members.clone();
        grown.push(new.clone());
        for k in &keys {
            let before = owner(k, &members).unwrap();
            let after = owner(k, &grown).unwrap();
            prop_assert!(after == before || after == new);
        }
    }
}

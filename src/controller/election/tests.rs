use std::time::{Duration, Instant, SystemTime};

use super::*;

const LEASE: Duration = Duration::from_secs(3);

fn lease_held_by(holder: Option<&str>, renewed: SystemTime, secs: i32, rv: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some("l".into()),
            namespace: Some("kube-system".into()),
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(secs),
            renew_time: Some(micro_now(renewed)),
            acquire_time: Some(micro_now(renewed)),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        }),
    }
}

fn seen(lease: &Lease, since: Instant) -> Observed {
    Observed {
        claim: Claim::of(lease),
        since,
    }
}

#[test]
fn absent_lease_is_created() {
    assert_eq!(
        decide(None, "a", Instant::now(), SystemTime::now()),
        Step::Create
    );
}

#[test]
fn own_lease_is_renewed_without_transition() {
    let now = SystemTime::now();
    let l = lease_held_by(Some("a"), now, 3, "7");
    let step = decide(Some(&seen(&l, Instant::now())), "a", Instant::now(), now);
    assert_eq!(step, Step::Claim { transition: false });
}

#[test]
fn live_lease_of_another_is_waited_for() {
    let now = SystemTime::now();
    let l = lease_held_by(Some("b"), now, 3, "7");
    let step = decide(Some(&seen(&l, Instant::now())), "a", Instant::now(), now);
    assert_eq!(step, Step::Wait { holder: "b".into() });
}

#[test]
fn expired_by_wall_clock_but_just_seen_changing_is_waited_for() {
    // The writer's clock may run behind ours: a fresh change means the holder is alive.
    let wall = SystemTime::now();
    let l = lease_held_by(Some("b"), wall - Duration::from_secs(60), 3, "7");
    let t0 = Instant::now();
    let obs = seen(&l, t0);
    let step = decide(Some(&obs), "a", t0 + Duration::from_secs(1), wall);
    assert_eq!(step, Step::Wait { holder: "b".into() });
}

#[test]
fn unchanged_for_a_term_and_expired_is_taken_over() {
    let wall = SystemTime::now();
    let l = lease_held_by(Some("b"), wall - Duration::from_secs(4), 3, "7");
    let t0 = Instant::now();
    let obs = seen(&l, t0);
    let step = decide(Some(&obs), "a", t0 + Duration::from_millis(3100), wall);
    assert_eq!(step, Step::Claim { transition: true });
}

#[test]
fn unchanged_for_a_term_but_renewed_in_the_future_is_waited_for() {
    // Our clock behind the writer's: the written term has not run out for us yet.
    let wall = SystemTime::now();
    let l = lease_held_by(Some("b"), wall + Duration::from_secs(10), 3, "7");
    let t0 = Instant::now();
    let step = decide(Some(&seen(&l, t0)), "a", t0 + LEASE * 2, wall);
    assert_eq!(step, Step::Wait { holder: "b".into() });
}

#[test]
fn observation_clock_restarts_only_on_change() {
    let wall = SystemTime::now();
    let l = lease_held_by(Some("b"), wall, 3, "7");
    let t0 = Instant::now();
    let o1 = Observed::update(None, Claim::of(&l), t0);
    let o2 = Observed::update(Some(o1), Claim::of(&l), t0 + Duration::from_secs(2));
    assert_eq!(o2.since, t0);
    let renewed = lease_held_by(Some("b"), wall + Duration::from_secs(1), 3, "8");
    let o3 = Observed::update(Some(o2), Claim::of(&renewed), t0 + Duration::from_secs(3));
    assert_eq!(o3.since, t0 + Duration::from_secs(3));
}

#[test]
fn released_lease_is_free_at_once() {
    let wall = SystemTime::now();
    let l = released(&lease_held_by(Some("b"), wall, 3, "7"), wall);
    let spec = l.spec.as_ref().unwrap();
    assert_eq!(spec.holder_identity, None);
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert_eq!(l.metadata.resource_version.as_deref(), Some("7"));
    let step = decide(Some(&seen(&l, Instant::now())), "a", Instant::now(), wall);
    assert_eq!(step, Step::Claim { transition: true });
}

#[test]
fn claim_keeps_resource_version_and_counts_transitions() {
    let wall = SystemTime::now();
    let read = lease_held_by(Some("b"), wall - Duration::from_secs(9), 3, "41");
    let ours = claimed(Some(&read), "l", "kube-system", "a", LEASE, wall);
    assert_eq!(ours.metadata.resource_version.as_deref(), Some("41"));
    let spec = ours.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(3));
    assert_eq!(spec.lease_transitions, Some(5));
    assert_eq!(spec.acquire_time, spec.renew_time);

    let again = claimed(
        Some(&lease_held_by(Some("a"), wall, 3, "42")),
        "l",
        "kube-system",
        "a",
        LEASE,
        wall + Duration::from_secs(1),
    );
    let spec = again.spec.unwrap();
    assert_eq!(
        spec.lease_transitions,
        Some(4),
        "a renewal is no transition"
    );
    assert_ne!(spec.acquire_time, spec.renew_time, "acquireTime kept");
}

#[test]
fn new_lease_names_itself() {
    let l = claimed(
        None,
        "l",
        "ns",
        "a",
        Duration::from_millis(2500),
        SystemTime::now(),
    );
    assert_eq!(l.metadata.name.as_deref(), Some("l"));
    assert_eq!(l.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(l.metadata.resource_version, None);
    assert_eq!(
        l.spec.unwrap().lease_duration_seconds,
        Some(3),
        "rounded up"
    );
}

#[test]
fn micro_time_has_microsecond_precision() {
    let t = micro_now(SystemTime::now());
    assert_eq!(t.0.subsec_nanosecond() % 1000, 0);
    let json = serde_json::to_string(&t).unwrap();
    let frac = json.trim_matches('"').split('.').nth(1).unwrap();
    assert_eq!(frac.trim_end_matches('Z').len(), 6, "{json}");
}

#[test]
fn signing_stops_before_the_term_ends() {
    let w = signing_window(Duration::from_secs(15), Duration::from_secs(10));
    assert_eq!(w, Duration::from_secs(10));
    let w = signing_window(Duration::from_secs(3), Duration::from_millis(2900));
    assert!(w <= Duration::from_millis(2800), "{w:?}");
}

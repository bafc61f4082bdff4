//! Active-active mode under faults and load: two replicas forced onto the same CSRs (each in
//! a group of its own, so each believes it owns everything: the claim alone keeps one
//! certificate per CSR), a replica whose API connection stalls (it stops signing before its
//! Lease expires for the others), and the scaling of signatures/s with slow tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::controller::run_bounded;
use crate::support::{api_support, appliance, controller};

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use appliance::*;
use controller::*;
use futures_util::StreamExt;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams, Preconditions};

fn bootstrap_csr(name: &str) -> CertificateSigningRequest {
    let pem = api_support::csr_pem(&format!("CN=system:node:{name},O=system:nodes"));
    kubelet_client_csr(name, pem)
}

async fn create(api: &Api<CertificateSigningRequest>, prefix: &str, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    futures_util::stream::iter(names.clone())
        .map(|n| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &bootstrap_csr(&n))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    names
}

/// Name → (has certificate, claim annotation) of every CSR.
async fn state(admin: &Api<CertificateSigningRequest>) -> BTreeMap<String, (bool, String)> {
    let l = admin.list(&ListParams::default()).await.unwrap();
    l.items
        .iter()
        .map(|c| {
            let signed = c
                .status
                .as_ref()
                .and_then(|s| s.certificate.as_ref())
                .is_some_and(|b| !b.0.is_empty());
            let claim = c
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubesigner.io/claimed-by"))
                .cloned()
                .unwrap_or_default();
            (c.metadata.name.clone().unwrap_or_default(), (signed, claim))
        })
        .collect()
}

async fn signed_count(admin: &Api<CertificateSigningRequest>, names: &[String]) -> usize {
    let s = state(admin).await;
    names
        .iter()
        .filter(|n| s.get(*n).is_some_and(|v| v.0))
        .count()
}

fn counts(r: &Replica, names: &HashSet<String>) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    for (kind, csr) in r.local_audit() {
        if names.contains(&csr) {
            match kind.as_str() {
                "signature_spent" => c.0 += 1,
                "status_written" => c.1 += 1,
                "signature_discarded" => c.2 += 1,
                _ => {}
            }
        }
    }
    c
}

fn written_in_cluster(a: &Appliance, names: &[String]) -> Vec<usize> {
    let pairs = audit_pairs(&a.state().join("kubesigner.toml"));
    names
        .iter()
        .map(|n| {
            pairs
                .iter()
                .filter(|(k, c)| k == "certificate_written" && c == n)
                .count()
        })
        .collect()
}

/// Forced split brain: replica-slow (token behind a 400 ms delay line) and replica-fast (its
/// token at full speed) each lead a group of one, so both own every CSR. The slow one claims
/// them first; the fast one then takes the claims over (the slow one is no member of its
/// group), signs and writes; the slow one's certificate writes, conditional on its claim's
/// resourceVersion, fail with 409 and it finds another claim: its signatures are discarded
/// and audited so. Exactly one certificate per CSR.
#[test]
fn two_replicas_forced_onto_the_same_csrs_write_one_certificate_each() {
    run_bounded(two_replicas_forced_onto_the_same_csrs_write_one_certificate_each_body());
}

async fn two_replicas_forced_onto_the_same_csrs_write_one_certificate_each_body() {
    const N: usize = 12;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let a = tokio::task::spawn_blocking(start_cluster).await.unwrap();
    let bootstrap = Api::all(kube_client(&a.bootstrap_kubeconfig()).await);
    let admin: Api<CertificateSigningRequest> = Api::all(kube_client(&a.admin_kubeconfig()).await);
    let mut slow = Replica::new(
        &a,
        "replica-slow",
        &ReplicaOptions {
            active: true,
            metrics: true,
            p11: true,
            token_delay: Some(Duration::from_millis(400)),
            controller_extra: "lease_name = \"group-slow\"\n",
            ..ReplicaOptions::default()
        },
    );
    let mut fast = Replica::new(
        &a,
        "replica-fast",
        &ReplicaOptions {
            active: true,
            metrics: true,
            controller_extra: "lease_name = \"group-fast\"\n",
            ..ReplicaOptions::default()
        },
    );
    tokio::task::block_in_place(|| {
        slow.start_hsm();
        slow.start();
        wait_for(Duration::from_secs(30), "slow replica a member", || {
            (slow.metric("kubesigner_controller_members") == Some(1.0)).then_some(())
        });
    });
    let names = create(&bootstrap, "forced", N).await;
    // Wait until the slow replica has claimed some (its signatures take seconds).
    let t0 = Instant::now();
    loop {
        let s = state(&admin).await;
        let claimed = names
            .iter()
            .filter(|n| s[*n].1.starts_with("replica-slow/") && !s[*n].0)
            .count();
        if claimed >= 4 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "slow replica claimed {claimed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::block_in_place(|| fast.start());
    loop {
        if signed_count(&admin, &names).await == N {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(90), "not all signed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the slow replica's signatures in flight finish and fail.
    let set: HashSet<String> = names.iter().cloned().collect();
    let (slow_counts, fast_counts) = tokio::task::block_in_place(|| {
        wait_for(Duration::from_secs(60), "the slow replica settles", || {
            let (s, w, d) = counts(&slow, &set);
            (s == w + d && s > 0).then_some(())
        });
        (counts(&slow, &set), counts(&fast, &set))
    });
    let lost = slow.metric("kubesigner_controller_signatures_discarded_total");
    eprintln!(
        "slow (spent, written, discarded) {slow_counts:?}, fast {fast_counts:?}; slow's discard metric {lost:?}"
    );
    assert_eq!(written_in_cluster(&a, &names), vec![1; N]);
    assert_eq!(slow_counts.1 + fast_counts.1, N, "one write per CSR");
    assert!(
        slow_counts.2 >= 1,
        "the slow replica lost some: {slow_counts:?}"
    );
    assert_eq!(fast_counts.0, fast_counts.1 + fast_counts.2);
    assert_eq!(lost, Some(slow_counts.2 as f64));
}

/// A replica whose API traffic stops (a stalled connection, not a dead process) stops
/// signing when its signing window closes — before its Lease's term, as written in the Lease,
/// runs out for the others — and the other replica signs its CSRs after that.
#[test]
fn replica_with_a_stalled_api_connection_stops_before_its_lease_expires() {
    run_bounded(replica_with_a_stalled_api_connection_stops_before_its_lease_expires_body());
}

async fn replica_with_a_stalled_api_connection_stops_before_its_lease_expires_body() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let a = tokio::task::spawn_blocking(start_cluster).await.unwrap();
    let bootstrap = Api::all(kube_client(&a.bootstrap_kubeconfig()).await);
    let admin: Api<CertificateSigningRequest> = Api::all(kube_client(&a.admin_kubeconfig()).await);
    let mut cut = Replica::new(
        &a,
        "replica-cut",
        &ReplicaOptions {
            active: true,
            metrics: true,
            api_proxy: true,
            ..ReplicaOptions::default()
        },
    );
    let mut peer = Replica::new(
        &a,
        "replica-peer",
        &ReplicaOptions {
            active: true,
            metrics: true,
            ..ReplicaOptions::default()
        },
    );
    tokio::task::block_in_place(|| {
        cut.start();
        peer.start();
        wait_for(Duration::from_secs(30), "both see two members", || {
            (cut.metric("kubesigner_controller_members") == Some(2.0)
                && peer.metric("kubesigner_controller_members") == Some(2.0))
            .then_some(())
        });
    });
    let before = create(&bootstrap, "pre", 20).await;
    let t0 = Instant::now();
    while signed_count(&admin, &before).await < before.len() {
        assert!(t0.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cut.stall_api(true);
    let stalled_at = SystemTime::now();
    // Its CSRs now wait for its Lease to run out; the peer then signs them.
    let after = create(&bootstrap, "post", 20).await;
    let t1 = Instant::now();
    while signed_count(&admin, &after).await < after.len() {
        assert!(
            t1.elapsed() < Duration::from_secs(30),
            "the peer did not take over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = t1.elapsed();
    let (left_at, expiry) = tokio::task::block_in_place(|| {
        let left = wait_for(Duration::from_secs(10), "the cut replica leaves", || {
            cut.log()
                .lines()
                .find(|l| l.contains("left the signing group"))
                .map(str::to_owned)
        });
        let ts = left.split_whitespace().next().unwrap().to_owned();
        let lease = member_leases(&a)
            .into_iter()
            .find(|(h, _, _)| h == "replica-cut")
            .expect("the cut replica's Lease");
        (ts, lease)
    });
    let parse = |s: &str| SystemTime::from(s.parse::<k8s_openapi::jiff::Timestamp>().unwrap());
    let left = parse(&left_at);
    let lease_end = parse(&expiry.1) + Duration::from_secs(expiry.2);
    eprintln!(
        "stalled at {:?}; left the group at {left_at} ({:?} after the stall), its Lease ran out at \
         {} + {} s ({:?} after leaving); the peer signed its CSRs {took:?} after they were created",
        k8s_openapi::jiff::Timestamp::try_from(stalled_at).unwrap(),
        left.duration_since(stalled_at).unwrap_or_default(),
        expiry.1,
        expiry.2,
        lease_end.duration_since(left),
    );
    assert!(left < lease_end, "left at {left_at}, Lease ran out before");
    // And nothing it signed reached the cluster after it left: every post-* certificate was
    // written by the peer.
    let set: HashSet<String> = after.iter().cloned().collect();
    let (_, cut_written, _) = tokio::task::block_in_place(|| counts(&cut, &set));
    assert_eq!(cut_written, 0);
    assert_eq!(written_in_cluster(&a, &after), vec![1; after.len()]);
    cut.stall_api(false);
}

/// Added latency per token round trip in the scaling test (each replica's own delay line).
const SCALE_DELAY: Duration = Duration::from_millis(100);
/// CSRs per phase of the scaling test.
const SCALE_N: usize = 100;

/// Certificates/s between 10 % and 90 % of `names` signed (the ramp and the tail left out),
/// polled every 100 ms.
async fn rate(admin: &Api<CertificateSigningRequest>, names: &[String]) -> f64 {
    let (lo, hi) = (names.len() / 10, names.len() * 9 / 10);
    let t0 = Instant::now();
    let mut start = None;
    loop {
        let n = signed_count(admin, names).await;
        if start.is_none() && n >= lo {
            start = Some((Instant::now(), n));
        }
        if n >= hi {
            let (t, n0) = start.unwrap();
            return (n - n0) as f64 / t.elapsed().as_secs_f64();
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{n} signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One replica, then three, each token behind the same delay line: the token is the limit,
/// and three replicas sign ≥ 2.5 × the certificates/s of one (measured in one run).
#[test]
fn three_slow_token_replicas_sign_at_least_two_and_a_half_times_one() {
    run_bounded(three_slow_token_replicas_sign_at_least_two_and_a_half_times_one_body());
}

async fn three_slow_token_replicas_sign_at_least_two_and_a_half_times_one_body() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let a = tokio::task::spawn_blocking(start_cluster).await.unwrap();
    let bootstrap = Api::all(kube_client(&a.bootstrap_kubeconfig()).await);
    let admin: Api<CertificateSigningRequest> = Api::all(kube_client(&a.admin_kubeconfig()).await);
    let opts = |group: &'static str| ReplicaOptions {
        active: true,
        metrics: true,
        p11: true,
        token_delay: Some(SCALE_DELAY),
        controller_extra: group,
        ..ReplicaOptions::default()
    };
    let start = |rs: &mut [Replica]| {
        for r in rs.iter_mut() {
            r.start_hsm();
            r.start();
        }
        let n = rs.len() as f64;
        wait_for(Duration::from_secs(30), "every view complete", || {
            rs.iter()
                .all(|r| r.metric("kubesigner_controller_members") == Some(n))
                .then_some(())
        });
    };
    let mut one = vec![Replica::new(
        &a,
        "one-a",
        &opts("lease_name = \"scale-one\"\n"),
    )];
    tokio::task::block_in_place(|| start(&mut one));
    let names = create(&bootstrap, "one", SCALE_N).await;
    let r1 = rate(&admin, &names).await;
    tokio::task::block_in_place(|| {
        for r in &mut one {
            r.stop();
        }
    });
    let mut three: Vec<Replica> = ["three-a", "three-b", "three-c"]
        .iter()
        .map(|id| Replica::new(&a, id, &opts("lease_name = \"scale-three\"\n")))
        .collect();
    tokio::task::block_in_place(|| start(&mut three));
    let names3 = create(&bootstrap, "three", SCALE_N).await;
    let r3 = rate(&admin, &names3).await;
    eprintln!(
        "token delay {SCALE_DELAY:?} per round trip, 2 sessions per replica: 1 replica {r1:.1} certificates/s, \
         3 replicas {r3:.1}/s: × {:.2}",
        r3 / r1
    );
    assert!(r3 >= 2.5 * r1, "1: {r1:.1}/s, 3: {r3:.1}/s");
}

const GHOST: &str = "kubesigner-controller-ghost";

/// A member Lease of the default group whose term ended two days ago.
fn ghost_lease() -> Lease {
    let renewed = SystemTime::now() - Duration::from_secs(2 * 86_400);
    Lease {
        metadata: ObjectMeta {
            name: Some(GHOST.into()),
            namespace: Some("kubesigner".into()),
            labels: Some(BTreeMap::from([(
                "kubesigner.io/member-of".to_owned(),
                "kubesigner-controller".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("ghost".into()),
            lease_duration_seconds: Some(3),
            renew_time: Some(kubesigner::controller::election::micro_now(renewed)),
            ..Default::default()
        }),
    }
}

/// A member whose token dies leaves the group at once: it releases its Lease (no
/// lease-duration wait), the peer's view shrinks on its next renewal, and the peer signs every
/// new CSR. A member Lease that expired long ago (a replica gone for good) is deleted.
#[test]
fn member_that_loses_its_token_leaves_and_its_share_moves_at_once() {
    run_bounded(member_that_loses_its_token_leaves_and_its_share_moves_at_once_body());
}

async fn member_that_loses_its_token_leaves_and_its_share_moves_at_once_body() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let a = tokio::task::spawn_blocking(start_cluster).await.unwrap();
    let bootstrap = Api::all(kube_client(&a.bootstrap_kubeconfig()).await);
    let admin: Api<CertificateSigningRequest> = Api::all(kube_client(&a.admin_kubeconfig()).await);
    let mut sick = Replica::new(
        &a,
        "replica-sick",
        &ReplicaOptions {
            active: true,
            metrics: true,
            p11: true,
            ..ReplicaOptions::default()
        },
    );
    let mut peer = Replica::new(
        &a,
        "replica-peer",
        &ReplicaOptions {
            active: true,
            metrics: true,
            ..ReplicaOptions::default()
        },
    );
    // A member Lease left two days ago by a replica that is gone: a member deletes it (a delete
    // with a stale resourceVersion precondition is refused first: the stand-in honours it, as
    // kube-apiserver does).
    let leases: Api<Lease> =
        Api::namespaced(kube_client(&a.admin_kubeconfig()).await, "kubesigner");
    let ghost = leases
        .create(&PostParams::default(), &ghost_lease())
        .await
        .unwrap();
    let rv: u64 = ghost.metadata.resource_version.unwrap().parse().unwrap();
    let stale = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: Some((rv - 1).to_string()),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    match leases.delete(GHOST, &stale).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 409),
        other => panic!("a stale delete precondition: {other:?}"),
    }
    let took = tokio::task::block_in_place(|| {
        sick.start_hsm();
        sick.start();
        peer.start();
        wait_for(Duration::from_secs(30), "two members", || {
            (sick.metric("kubesigner_controller_members") == Some(2.0)
                && peer.metric("kubesigner_controller_members") == Some(2.0))
            .then_some(())
        });
        let lost = Instant::now();
        sick.kill_hsm();
        wait_for(Duration::from_secs(30), "the peer alone", || {
            (peer.metric("kubesigner_controller_members") == Some(1.0)).then_some(())
        });
        lost.elapsed()
    });
    eprintln!("token killed → the peer's view has one member after {took:?}");
    let t0 = Instant::now();
    while leases.get_opt(GHOST).await.unwrap().is_some() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the ghost's Lease stays"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        took < LEASE_DURATION,
        "{took:?}: the Lease was not released"
    );
    let names = create(&bootstrap, "sick", 10).await;
    let t0 = Instant::now();
    while signed_count(&admin, &names).await < names.len() {
        assert!(t0.elapsed() < Duration::from_secs(30), "not signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let set: HashSet<String> = names.iter().cloned().collect();
    tokio::task::block_in_place(|| {
        assert_eq!(
            counts(&peer, &set).1,
            names.len(),
            "the peer wrote every one"
        );
        assert_eq!(counts(&sick, &set).0, 0, "the sick replica spent nothing");
        assert!(sick.log().contains("signer not ready"), "{}", sick.log());
        assert_eq!(sick.metric("kubesigner_controller_members"), Some(0.0));
    });
}

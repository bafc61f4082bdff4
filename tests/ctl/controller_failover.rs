//! Three `kubesigner controller` replicas (each its own SoftHSM token copy of the same CA key)
//! against `kubesigner dev --external-signing` with deploy/rbac.yaml: kill -9 the leader,
//! another replica takes the Lease and signs; every CSR created gets a certificate, and none
//! gets two: counted from the cluster's audit records of certificates written via `/status`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::appliance;

use crate::support::controller;

use std::time::{Duration, Instant};

use appliance::*;
use controller::*;

const WAIT: Duration = Duration::from_secs(40);
const CSRS: usize = 8;
/// CSRs created before the leader is killed.
const BEFORE_KILL: usize = 3;

#[test]
fn leader_killed_successor_signs_every_csr_exactly_once() {
    let a = start_cluster();
    let mut replicas: Vec<Replica> = ["replica-a", "replica-b", "replica-c"]
        .iter()
        .map(|id| Replica::new(&a, id, &ReplicaOptions::default()))
        .collect();
    for r in &mut replicas {
        r.start();
    }
    let first = wait_for(WAIT, "a lease holder", || lease_holder(&a));
    let names: Vec<String> = (0..CSRS).map(|i| format!("fo-{i}")).collect();
    for (i, name) in names.iter().enumerate().take(BEFORE_KILL) {
        create_bootstrap_csr(&a, name, &format!("ctl-node-{}", i + 1));
    }
    // The leader signs what exists, then dies without warning (no lease release).
    wait_for(WAIT, "pre-kill certificates", || {
        names[..BEFORE_KILL]
            .iter()
            .all(|n| certificate_of(&a, n).is_some())
            .then_some(())
    });
    let leader = replicas.iter_mut().find(|r| r.identity == first).unwrap();
    let killed = Instant::now();
    leader.kill9();
    for (i, name) in names.iter().enumerate().skip(BEFORE_KILL) {
        create_bootstrap_csr(&a, name, &format!("ctl-node-{}", i + 1));
    }
    let first_after = wait_for(WAIT, "a certificate after the kill", || {
        names[BEFORE_KILL..]
            .iter()
            .any(|n| certificate_of(&a, n).is_some())
            .then(|| killed.elapsed())
    });
    let successor = lease_holder(&a).unwrap();
    eprintln!("kill -9 of {first} → {successor} signed after {first_after:?}");
    assert_ne!(successor, first);
    // The successor waits out the dead leader's term (it cannot tell death from a slow
    // network), then signs at once: one lease duration plus polling, the CSR creates and the
    // write (≈ 4.2 s measured; the margin is for loaded CI machines).
    assert!(
        first_after < LEASE_DURATION * 2 + Duration::from_secs(2),
        "takeover took {first_after:?}"
    );

    // No CSR missed; none signed twice.
    for n in &names {
        wait_for(WAIT, &format!("certificate of {n}"), || {
            certificate_of(&a, n)
        });
    }
    let ca = a.state().join("ca.crt");
    for n in &names {
        let pem = certificate_of(&a, n).unwrap();
        let findings = check_certificate(a.dir.path(), &pem, &ca, &[]);
        assert!(findings.is_empty(), "{n}: {findings:?}");
        assert_eq!(certificates_written(&a, n), 1, "{n}");
    }
    let all_written = audit_pairs(&a.state().join("kubesigner.toml"))
        .iter()
        .filter(|(k, _)| k == "certificate_written")
        .count();
    assert_eq!(all_written, CSRS);
    // Locally: every replica's records; a signature spent without a status write (a leader
    // killed in between) would show as spent-not-written, never as a second write.
    let mut written_locally = vec![0usize; CSRS];
    let mut spent_locally = vec![0usize; CSRS];
    for r in &replicas {
        for (kind, csr) in r.local_audit() {
            if let Some(i) = names.iter().position(|n| *n == csr) {
                match kind.as_str() {
                    "status_written" => written_locally[i] += 1,
                    "signature_spent" => spent_locally[i] += 1,
                    _ => {}
                }
            }
        }
    }
    eprintln!("spent per CSR: {spent_locally:?}; written per CSR: {written_locally:?}");
    assert!(
        written_locally.iter().all(|w| *w <= 1),
        "{written_locally:?}"
    );
    assert!(spent_locally.iter().all(|s| *s >= 1), "{spent_locally:?}");
    // A replica that never led has still recorded every node's live certificate (it watches
    // as a follower), so it would hold a second bootstrap for those nodes if it led next.
    let bystander = replicas
        .iter()
        .find(|r| r.identity != first && r.identity != successor)
        .unwrap();
    let knows = |i: usize| {
        let out = std::process::Command::new(bin())
            .args(["node", "show", &format!("ctl-node-{i}"), "--config"])
            .arg(&bystander.config)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("latest-client-certificate-not-after: 20")
    };
    wait_for(WAIT, "the bystander's node facts", || {
        (1..=CSRS).all(knows).then_some(())
    });
    let transitions = kubectl_ok(
        &a.admin_kubeconfig(),
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            "kubesigner-controller",
            "-o",
            "jsonpath={.spec.leaseTransitions}",
        ],
    );
    assert!(
        transitions.trim().parse::<i32>().unwrap() >= 1,
        "{transitions}"
    );
}

#[test]
fn leader_that_loses_its_hsm_steps_down_and_a_peer_signs() {
    let a = start_cluster();
    let p11 = ReplicaOptions {
        p11: true,
        ..ReplicaOptions::default()
    };
    let mut sick = Replica::new(&a, "replica-hsm", &p11);
    sick.start_hsm();
    sick.start();
    assert_eq!(
        wait_for(WAIT, "a lease holder", || lease_holder(&a)),
        "replica-hsm"
    );
    let mut peer = Replica::new(&a, "replica-peer", &ReplicaOptions::default());
    peer.start();
    create_bootstrap_csr(&a, "hsm-0", "ctl-node-1");
    wait_for(WAIT, "hsm-0 signed", || certificate_of(&a, "hsm-0"));

    // The HSM dies: the leader stops signing, releases the Lease, the peer takes over at once
    // (no lease-duration wait: the Lease was released).
    let lost = Instant::now();
    sick.kill_hsm();
    wait_for(WAIT, "the peer to lead", || {
        (lease_holder(&a).as_deref() == Some("replica-peer")).then_some(())
    });
    let took = lost.elapsed();
    eprintln!("HSM killed → peer leads after {took:?}");
    assert!(took < LEASE_DURATION * 2, "{took:?}");
    create_bootstrap_csr(&a, "hsm-1", "ctl-node-2");
    wait_for(WAIT, "hsm-1 signed", || certificate_of(&a, "hsm-1"));
    assert_eq!(certificates_written(&a, "hsm-1"), 1);
    let by_peer = peer
        .local_audit()
        .iter()
        .any(|(k, n)| k == "status_written" && n == "hsm-1");
    assert!(by_peer, "{}", peer.log());
    assert!(sick.log().contains("signer not ready"), "{}", sick.log());
}

#[test]
fn a_paused_leader_wakes_up_as_a_follower_and_signs_nothing() {
    // SIGSTOP stands for a leader frozen (GC pause, VM migration, partition): its term runs out,
    // a peer takes over; on SIGCONT its signing window has long closed, so it signs nothing.
    let a = start_cluster();
    let mut first = Replica::new(&a, "replica-a", &ReplicaOptions::default());
    first.start();
    assert_eq!(
        wait_for(WAIT, "a lease holder", || lease_holder(&a)),
        "replica-a"
    );
    let mut peer = Replica::new(&a, "replica-b", &ReplicaOptions::default());
    peer.start();
    std::thread::sleep(Duration::from_secs(1));
    first.signal("-STOP");
    wait_for(WAIT, "the peer to lead", || {
        (lease_holder(&a).as_deref() == Some("replica-b")).then_some(())
    });
    let names: Vec<String> = (0..3).map(|i| format!("pause-{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        create_bootstrap_csr(&a, n, &format!("ctl-node-{}", i + 1));
    }
    first.signal("-CONT");
    for n in &names {
        wait_for(WAIT, &format!("certificate of {n}"), || {
            certificate_of(&a, n)
        });
    }
    // Negative check: a bounded wait on purpose (a late second write may come in it); it fails
    // as soon as a CSR has a second certificate written.
    assert!(!tools::poll(Duration::from_secs(2), || {
        names.iter().any(|n| certificates_written(&a, n) > 1)
    }));
    for n in &names {
        assert_eq!(certificates_written(&a, n), 1, "{n}");
    }
    let spent_by_first = first
        .local_audit()
        .iter()
        .filter(|(k, n)| k == "signature_spent" && names.contains(n))
        .count();
    assert_eq!(spent_by_first, 0, "{}", first.log());
    assert!(first.log().contains("leadership lost"), "{}", first.log());
    assert_eq!(lease_holder(&a).as_deref(), Some("replica-b"));
}

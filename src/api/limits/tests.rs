use super::*;

const NODE_TOKEN: &str = "system:bootstrap:abcdef";

fn attempt<'a>(user: &'a str, node: Option<&'a str>, pending: usize) -> CreateAttempt<'a> {
    CreateAttempt {
        requester: Requester::User(user),
        node,
        pending_for_node: pending,
    }
}

/// A controllable clock: `t0 + secs`.
struct Clock(Instant);

impl Clock {
    fn at(&self, secs: f64) -> Instant {
        self.0 + Duration::from_secs_f64(secs)
    }
}

fn clock() -> Clock {
    Clock(Instant::now())
}

fn limit_of(d: Decision) -> Option<Limit> {
    match d {
        Decision::Allow => None,
        Decision::Throttle { limit, .. } => Some(limit),
    }
}

#[test]
fn pending_cap_per_node() {
    let c = clock();
    let mut l = Limiter::new(LimitsConfig::default());
    for pending in 0..3 {
        let d = l.check_create(&attempt(NODE_TOKEN, Some("n1"), pending), c.at(0.0));
        assert_eq!(d, Decision::Allow, "pending {pending}");
    }
    let d = l.check_create(&attempt(NODE_TOKEN, Some("n1"), 3), c.at(0.0));
    assert_eq!(
        d,
        Decision::Throttle {
            retry_after: Duration::from_secs(60),
            limit: Limit::PendingPerNode
        }
    );
    assert_eq!(d.retry_after_secs(), Some(60));
    // Without a node name (a non-kubelet signer) there is no pending cap.
    let d = l.check_create(&attempt(NODE_TOKEN, None, 99), c.at(0.0));
    assert_eq!(d, Decision::Allow);
}

#[test]
fn failing_kubelet_every_32s_is_slowed_to_one_per_minute() {
    let c = clock();
    let mut l = Limiter::new(LimitsConfig::default());
    let node = "system:node:n1";
    // The kubelet's backoff: 0, 2, 6, 14, 30 s, then every 32 s.
    let mut times = vec![0.0, 2.0, 6.0, 14.0, 30.0];
    times.extend((1..20).map(|i| 30.0 + 32.0 * f64::from(i)));
    let mut allowed = Vec::new();
    for t in times {
        match l.check_create(&attempt(node, Some("n1"), 0), c.at(t)) {
            Decision::Allow => allowed.push(t),
            Decision::Throttle { limit, retry_after } => {
                assert_eq!(limit, Limit::NodeRate);
                assert!(retry_after <= Duration::from_secs(60), "{retry_after:?}");
            }
        }
    }
    assert_eq!(&allowed[..5], &[0.0, 2.0, 6.0, 14.0, 30.0]);
    // Token bucket: by any time t, at most burst + t / 60 s creates were allowed.
    for (i, t) in allowed.iter().enumerate() {
        assert!((i + 1) as f64 <= 5.0 + t / 60.0 + 1.0, "{allowed:?}");
    }
    // ... and the throttled kubelet still gets through regularly.
    assert!(allowed.len() >= 14, "{allowed:?}");
}

#[test]
fn retry_after_is_exact_and_rounds_up() {
    let c = clock();
    let cfg = LimitsConfig {
        node_burst: 1,
        node_interval: Duration::from_secs(10),
        ..LimitsConfig::default()
    };
    let mut l = Limiter::new(cfg);
    assert_eq!(
        l.check_create(&attempt("u", Some("n"), 0), c.at(0.0)),
        Decision::Allow
    );
    let d = l.check_create(&attempt("u", Some("n"), 0), c.at(2.5));
    assert_eq!(
        d,
        Decision::Throttle {
            retry_after: Duration::from_millis(7500),
            limit: Limit::NodeRate
        }
    );
    assert_eq!(d.retry_after_secs(), Some(8));
    // Exactly when told: allowed.
    assert_eq!(
        l.check_create(&attempt("u", Some("n"), 0), c.at(10.0)),
        Decision::Allow
    );
}

#[test]
fn ten_thousand_node_storm_through_one_token_is_not_shed() {
    let c = clock();
    let mut l = Limiter::new(LimitsConfig::default());
    let names: Vec<String> = (0..10_000).map(|i| format!("node-{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        // All within 5 seconds.
        let t = 5.0 * i as f64 / 10_000.0;
        let d = l.check_create(&attempt(NODE_TOKEN, Some(n), 0), c.at(t));
        assert_eq!(d, Decision::Allow, "node {i}");
    }
}

#[test]
fn requester_rate_limits_a_requester_across_nodes() {
    let c = clock();
    let cfg = LimitsConfig {
        requester_burst: 3,
        requester_interval: Duration::from_secs(1),
        ..LimitsConfig::default()
    };
    let mut l = Limiter::new(cfg);
    for n in ["a", "b", "c"] {
        assert_eq!(
            l.check_create(&attempt("t", Some(n), 0), c.at(0.0)),
            Decision::Allow
        );
    }
    let d = l.check_create(&attempt("t", Some("d"), 0), c.at(0.0));
    assert_eq!(limit_of(d), Some(Limit::RequesterRate));
    // A refused attempt is not counted against the node either.
    let d = l.check_create(&attempt("other", Some("d"), 0), c.at(0.0));
    assert_eq!(d, Decision::Allow);
    assert_eq!(
        l.check_create(&attempt("t", Some("e"), 0), c.at(1.0)),
        Decision::Allow
    );
}

#[test]
fn admins_are_exempt() {
    let c = clock();
    let cfg = LimitsConfig {
        node_burst: 1,
        requester_burst: 1,
        ..LimitsConfig::default()
    };
    let mut l = Limiter::new(cfg);
    let admin = CreateAttempt {
        requester: Requester::Admin,
        node: Some("n"),
        pending_for_node: 100,
    };
    for _ in 0..10 {
        assert_eq!(l.check_create(&admin, c.at(0.0)), Decision::Allow);
    }
    assert_eq!(l.tracked(), (0, 0));
}

#[test]
fn disabled_limits_allow_everything() {
    let c = clock();
    let cfg = LimitsConfig {
        enabled: false,
        node_burst: 1,
        ..LimitsConfig::default()
    };
    let mut l = Limiter::new(cfg);
    for _ in 0..10 {
        let d = l.check_create(&attempt("u", Some("n"), 50), c.at(0.0));
        assert_eq!(d, Decision::Allow);
    }
}

#[test]
fn memory_is_bounded_and_refilled_keys_are_dropped() {
    let c = clock();
    let cfg = LimitsConfig {
        max_tracked_keys: 100,
        node_burst: 1,
        node_interval: Duration::from_secs(60),
        ..LimitsConfig::default()
    };
    let mut l = Limiter::new(cfg);
    for i in 0..1000 {
        let d = l.check_create(&attempt("u", Some(&format!("n{i}")), 0), c.at(0.0));
        assert_eq!(d, Decision::Allow);
        assert!(l.tracked().0 <= 100);
    }
    assert_eq!(l.tracked().0, 100);
    // The most recently limited keys are kept: n999 is still limited.
    let d = l.check_create(&attempt("u", Some("n999"), 0), c.at(1.0));
    assert_eq!(limit_of(d), Some(Limit::NodeRate));
    // Once every bucket has refilled, one call drops them all.
    let d = l.check_create(&attempt("u", Some("fresh"), 0), c.at(120.0));
    assert_eq!(d, Decision::Allow);
    assert_eq!(l.tracked().0, 1);
}

#[test]
fn long_keys_are_cut() {
    let c = clock();
    let cfg = LimitsConfig {
        node_burst: 1,
        ..LimitsConfig::default()
    };
    let mut l = Limiter::new(cfg);
    let a = format!("{}a", "x".repeat(MAX_KEY_BYTES));
    let b = format!("{}b", "x".repeat(MAX_KEY_BYTES));
    assert_eq!(
        l.check_create(&attempt("u", Some(&a), 0), c.at(0.0)),
        Decision::Allow
    );
    let d = l.check_create(&attempt("v", Some(&b), 0), c.at(0.0));
    assert_eq!(limit_of(d), Some(Limit::NodeRate));
}

#[test]
fn config_section_parses_with_defaults() {
    let cfg: LimitsConfig =
        toml::from_str("max_pending_per_node = 5\nnode_interval = \"30s\"").unwrap();
    assert_eq!(cfg.max_pending_per_node, 5);
    assert_eq!(cfg.node_interval, Duration::from_secs(30));
    assert_eq!(cfg.requester_burst, 20_000);
    assert_eq!(
        toml::from_str::<LimitsConfig>("").unwrap(),
        LimitsConfig::default()
    );
    assert!(toml::from_str::<LimitsConfig>("burst = 1").is_err());
}

#[test]
fn whole_config_file_takes_gc_and_limits_sections_or_defaults() {
    let base =
        "data_dir = \"d\"\n[signer]\nkey = \"pkcs11:token=t\"\n[ca]\ncert_file = \"ca.pem\"\n";
    let cfg = crate::config::Config::parse(base).unwrap();
    assert_eq!(cfg.limits, LimitsConfig::default());
    assert_eq!(cfg.gc, crate::config::GcConfig::default());
    let text = format!("{base}[gc]\npending_age = \"1h\"\n[limits]\nmax_pending_per_node = 1\n");
    let cfg = crate::config::Config::parse(&text).unwrap();
    assert_eq!(cfg.gc.pending_age, Duration::from_secs(3600));
    assert_eq!(cfg.limits.max_pending_per_node, 1);
    let bad = format!("{base}[limits]\nmax_pending = 1\n");
    assert!(crate::config::Config::parse(&bad).is_err());
}

proptest::proptest! {
    #[test]
    fn arbitrary_sequences_stay_bounded(
        steps in proptest::collection::vec((0u8..20, 0u8..4, 0u64..5000, 0usize..5), 0..200)
    ) {
        let c = clock();
        let cfg = LimitsConfig {
            max_tracked_keys: 8,
            node_burst: 2,
            requester_burst: 3,
            requester_interval: Duration::from_secs(1),
            ..LimitsConfig::default()
        };
        let mut l = Limiter::new(cfg);
        let mut t = 0u64;
        for (node, user, dt, pending) in steps {
            t += dt;
            let node = format!("n{node}");
            let user = format!("u{user}");
            let d = l.check_create(&attempt(&user, Some(&node), pending), c.at(t as f64 / 1000.0));
            if let Decision::Throttle { .. } = d {
                proptest::prop_assert!(d.retry_after_secs().unwrap() >= 1);
            }
            let (n, u) = l.tracked();
            proptest::prop_assert!(n <= 8 && u <= 8);
        }
    }
}

//! Unit tests: each validator alone, then the approver's phases.

use std::time::{Duration, SystemTime};

use der::asn1::BitString;
use globset::{Glob, GlobSetBuilder};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::facts::{NodeFacts, NodeState, Verdict};
use super::groups::GroupMatcher;
use super::inventory::NodeInventory;
use super::validators::*;
use super::{Approver, Decision};
use crate::config::{AuthConfig, IssuanceConfig};
use crate::issue::ca::parse_subject;
use crate::issue::{
    NodeName, ParsedCsr, Requester, San, SignerName, SubjectIdentity, SubjectKey, Usage, UsageSet,
    ValidatedCsr, oids,
};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn csr(signer: SignerName, node: &str, sans: Vec<San>) -> ValidatedCsr {
    ValidatedCsr {
        signer,
        csr: ParsedCsr {
            subject: crate::issue::Subject::decode(
                parse_subject(&format!("CN=system:node:{node},O=system:nodes")).unwrap(),
            ),
            public_key: SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifierOwned {
                    oid: oids::EC_PUBLIC_KEY,
                    parameters: None,
                },
                subject_public_key: BitString::from_bytes(&[4; 65]).unwrap(),
            },
            key: SubjectKey::EcP256,
            sans,
            requests_ca: false,
        },
        usages: UsageSet::of(&[Usage::DigitalSignature, Usage::ClientAuth]),
        requested_ttl: None,
        identity: SubjectIdentity::Node(NodeName::parse(node).unwrap()),
        requester: Requester::default(),
    }
}

fn client_csr(signer: SignerName) -> ValidatedCsr {
    let mut c = csr(signer, "x", vec![]);
    c.identity = SubjectIdentity::Client {
        common_name: "x".into(),
    };
    c
}

fn who(user: &str, groups: &[&str]) -> Requester {
    Requester {
        username: user.into(),
        uid: String::new(),
        groups: groups.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn bootstrapper() -> Requester {
    who(
        "system:bootstrap:abcdef",
        &["system:bootstrappers", "system:authenticated"],
    )
}

fn node1() -> Requester {
    who(
        "system:node:node1",
        &["system:nodes", "system:authenticated"],
    )
}

fn patterns(p: &[&str]) -> globset::GlobSet {
    let mut b = GlobSetBuilder::new();
    for x in p {
        b.add(Glob::new(x).unwrap());
    }
    b.build().unwrap()
}

fn rule_of(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Deny { rule, .. } | Verdict::Hold { rule, .. } => rule,
    }
}

const INVENTORY: &str = r#"
[nodes.node1]
addresses = ["10.0.0.5"]
cidrs = ["fd00::/64"]
dns_names = ["node1", "node1.example.com"]
"#;

#[test]
fn node_not_disabled_denies_disabled_nodes_only() {
    let c = csr(SignerName::KubeletClient, "node1", vec![]);
    let r = bootstrapper();
    let mut f = NodeFacts::default();
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(node_not_disabled(&ctx), Verdict::Pass);
    f.state = NodeState::Disabled;
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(rule_of(&node_not_disabled(&ctx)), "node_disabled");
}

#[test]
fn token_node_binding_checks_patterns() {
    let c = csr(SignerName::KubeletClient, "worker-7", vec![]);
    let r = bootstrapper();
    let mut f = NodeFacts::default();
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(token_node_binding(&ctx), Verdict::Pass, "unbound token");
    f.token_node_patterns = Some(patterns(&["worker-*"]));
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(token_node_binding(&ctx), Verdict::Pass);
    f.token_node_patterns = Some(patterns(&["db-*"]));
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(rule_of(&token_node_binding(&ctx)), "token_node_binding");
}

#[test]
fn route_picks_the_path() {
    let m = GroupMatcher::new(&IssuanceConfig::default().auto_approve_groups).unwrap();
    let f = NodeFacts::default();
    let client = csr(SignerName::KubeletClient, "node1", vec![]);
    let serving = csr(
        SignerName::KubeletServing,
        "node1",
        vec![San::Dns("node1".into())],
    );
    let r = |c: &ValidatedCsr, who: &Requester| {
        route(
            &Ctx {
                csr: c,
                requester: who,
                facts: &f,
                now: now(),
            },
            &m,
        )
    };
    assert_eq!(r(&client, &bootstrapper()), Ok(Path::Bootstrap));
    assert_eq!(r(&client, &node1()), Ok(Path::Renewal));
    assert_eq!(r(&serving, &node1()), Ok(Path::Serving));
    let static_token = who("kubelet-bootstrap", &["system:kubelet-bootstrap"]);
    assert_eq!(
        rule_of(&r(&client, &static_token).unwrap_err()),
        "requester_not_auto_approved"
    );
    let other_node = who("system:node:node2", &["system:nodes"]);
    assert_eq!(
        rule_of(&r(&client, &other_node).unwrap_err()),
        "requester_not_auto_approved"
    );
    assert_eq!(
        rule_of(&r(&serving, &other_node).unwrap_err()),
        "serving_requester_not_node"
    );
    assert_eq!(
        rule_of(&r(&serving, &bootstrapper()).unwrap_err()),
        "serving_requester_not_node"
    );
    // The node's user name without the nodes group is no node identity (e.g. a static token
    // that names itself system:node:node1): no renewal, no serving.
    let impostor = who("system:node:node1", &["system:authenticated"]);
    assert_eq!(
        rule_of(&r(&client, &impostor).unwrap_err()),
        "requester_not_auto_approved"
    );
    assert_eq!(
        rule_of(&r(&serving, &impostor).unwrap_err()),
        "serving_requester_not_node"
    );
    let api = client_csr(SignerName::ApiserverClient);
    assert_eq!(
        rule_of(&r(&api, &node1()).unwrap_err()),
        "admin_approval_only"
    );
}

#[test]
fn no_live_client_certificate_holds_while_one_is_valid() {
    let c = csr(SignerName::KubeletClient, "node1", vec![]);
    let r = bootstrapper();
    let mut f = NodeFacts::default();
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(no_live_client_certificate(&ctx), Verdict::Pass);
    f.latest_client_cert_not_after = Some(now() - Duration::from_secs(1));
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(no_live_client_certificate(&ctx), Verdict::Pass, "expired");
    f.latest_client_cert_not_after = Some(now() + Duration::from_secs(3600));
    let ctx = Ctx {
        csr: &c,
        requester: &r,
        facts: &f,
        now: now(),
    };
    assert_eq!(
        rule_of(&no_live_client_certificate(&ctx)),
        "live_certificate_exists"
    );
}

#[test]
fn sans_in_inventory_checks_every_san() {
    let inv = NodeInventory::parse(INVENTORY).unwrap();
    let r = node1();
    let f = NodeFacts::default();
    let check = |sans: Vec<San>, node: &str, inv: Option<&NodeInventory>| {
        let c = csr(SignerName::KubeletServing, node, sans);
        rule_of(&sans_in_inventory(
            &Ctx {
                csr: &c,
                requester: &r,
                facts: &f,
                now: now(),
            },
            inv,
        ))
    };
    let ok = vec![
        San::Dns("node1".into()),
        San::Ip("10.0.0.5".parse().unwrap()),
        San::Ip("fd00::9".parse().unwrap()),
    ];
    assert_eq!(check(ok.clone(), "node1", Some(&inv)), "pass");
    let mut bad = ok.clone();
    bad.push(San::Ip("10.0.0.6".parse().unwrap()));
    assert_eq!(check(bad, "node1", Some(&inv)), "san_not_in_inventory");
    assert_eq!(
        check(
            vec![San::Dns("kubernetes.default".into())],
            "node1",
            Some(&inv)
        ),
        "san_not_in_inventory"
    );
    assert_eq!(
        check(ok.clone(), "node2", Some(&inv)),
        "node_not_in_inventory"
    );
    assert_eq!(check(ok, "node1", None), "node_not_in_inventory");
}

fn approver() -> Approver {
    Approver::new(
        &AuthConfig::default(),
        &IssuanceConfig::default(),
        Some(NodeInventory::parse(INVENTORY).unwrap()),
    )
    .unwrap()
}

fn kind(d: &Decision) -> (&'static str, &'static str) {
    match d {
        Decision::Approve { reason, .. } => ("approve", reason),
        Decision::Deny { rule, .. } => ("deny", rule),
        Decision::Pending { rule, .. } => ("pending", rule),
    }
}

#[test]
fn approver_phases() {
    let a = approver();
    let client = csr(SignerName::KubeletClient, "node1", vec![]);
    let serving = csr(
        SignerName::KubeletServing,
        "node1",
        vec![San::Dns("node1.example.com".into())],
    );
    let f = NodeFacts::default();
    assert_eq!(
        kind(&a.decide(&client, &bootstrapper(), &f, now())),
        ("approve", "AutoApproved")
    );
    assert_eq!(
        kind(&a.decide(&client, &node1(), &f, now())),
        ("approve", "AutoApproved")
    );
    assert_eq!(
        kind(&a.decide(&serving, &node1(), &f, now())),
        ("approve", "AutoApproved")
    );

    // A live certificate holds a bootstrap but not a renewal.
    let live = NodeFacts {
        latest_client_cert_not_after: Some(now() + Duration::from_secs(60)),
        ..NodeFacts::default()
    };
    assert_eq!(
        kind(&a.decide(&client, &bootstrapper(), &live, now())),
        ("pending", "live_certificate_exists")
    );
    assert_eq!(
        kind(&a.decide(&client, &node1(), &live, now())),
        ("approve", "AutoApproved")
    );

    // Disabled beats every path, including renewal and serving.
    let disabled = NodeFacts {
        state: NodeState::Disabled,
        ..NodeFacts::default()
    };
    for (c, r) in [
        (&client, bootstrapper()),
        (&client, node1()),
        (&serving, node1()),
    ] {
        let d = a.decide(c, &r, &disabled, now());
        assert_eq!(kind(&d), ("deny", "node_disabled"));
        let Decision::Deny { message, .. } = d else {
            unreachable!()
        };
        assert!(message.contains("node_disabled"));
    }
    // Bound token, other node: denied even though a live cert would only hold it.
    let bound = NodeFacts {
        token_node_patterns: Some(patterns(&["node2"])),
        latest_client_cert_not_after: Some(now() + Duration::from_secs(60)),
        ..NodeFacts::default()
    };
    assert_eq!(
        kind(&a.decide(&client, &bootstrapper(), &bound, now())),
        ("deny", "token_node_binding")
    );
    // Serving with an unknown SAN waits.
    let bad = csr(
        SignerName::KubeletServing,
        "node1",
        vec![San::Ip("192.0.2.1".parse().unwrap())],
    );
    assert_eq!(
        kind(&a.decide(&bad, &node1(), &f, now())),
        ("pending", "san_not_in_inventory")
    );
    // The seeds' static-token group is a bootstrap group but not auto-approved by default.
    let static_token = who("kubelet-bootstrap", &["system:kubelet-bootstrap"]);
    assert!(a.is_bootstrap_requester(&static_token));
    assert_eq!(
        kind(&a.decide(&client, &static_token, &f, now())),
        ("pending", "requester_not_auto_approved")
    );
    let mut cfg = IssuanceConfig::default();
    cfg.auto_approve_groups
        .push("system:kubelet-bootstrap".into());
    let a2 = Approver::new(&AuthConfig::default(), &cfg, None).unwrap();
    assert_eq!(
        kind(&a2.decide(&client, &static_token, &f, now())),
        ("approve", "AutoApproved")
    );
    // kube-apiserver-client: admin only.
    let api = client_csr(SignerName::ApiserverClient);
    assert_eq!(
        kind(&a.decide(&api, &node1(), &f, now())),
        ("pending", "admin_approval_only")
    );
}

#[test]
fn first_bootstrap_address_counts_as_one_inventory_address() {
    let inv = NodeInventory::parse(INVENTORY).unwrap();
    let r = node1();
    let check = |sans: Vec<San>, node: &str, first: Option<&str>, inv: Option<&NodeInventory>| {
        let f = NodeFacts {
            first_bootstrap_address: first.map(|a| a.parse().unwrap()),
            ..NodeFacts::default()
        };
        let c = csr(SignerName::KubeletServing, node, sans);
        rule_of(&sans_in_inventory(
            &Ctx {
                csr: &c,
                requester: &r,
                facts: &f,
                now: now(),
            },
            inv,
        ))
    };
    let tofu = San::Ip("192.0.2.7".parse().unwrap());
    // Not in the inventory: the recorded address alone is enough for an IP SAN ...
    assert_eq!(
        check(vec![tofu.clone()], "node2", Some("192.0.2.7"), None),
        "pass"
    );
    assert_eq!(
        check(vec![tofu.clone()], "node2", None, None),
        "node_not_in_inventory"
    );
    // ... but for nothing else: another IP, or any DNS name.
    assert_eq!(
        check(
            vec![tofu.clone(), San::Dns("node2".into())],
            "node2",
            Some("192.0.2.7"),
            None
        ),
        "san_not_in_inventory"
    );
    assert_eq!(
        check(
            vec![San::Ip("192.0.2.8".parse().unwrap())],
            "node2",
            Some("192.0.2.7"),
            Some(&inv)
        ),
        "san_not_in_inventory"
    );
    // In the inventory: the recorded address adds to the listed ones.
    assert_eq!(
        check(
            vec![tofu, San::Dns("node1".into())],
            "node1",
            Some("192.0.2.7"),
            Some(&inv)
        ),
        "pass"
    );
}

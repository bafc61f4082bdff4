//! The authorization matrix: identities × verbs × CSRs, each cell with its expected answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::table;

use std::collections::BTreeMap;

use kubesigner::authn::{AuthMethod, BootstrapTokenId, BootstrapTokenInfo, Identity};
use kubesigner::authz::{
    AuthzConfig, CsrFacts, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER, Verb, authorize,
    is_admin, owns,
};

fn ident(user: &str, groups: &[&str], method: AuthMethod) -> Identity {
    let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    groups.push("system:authenticated".into());
    Identity {
        user: user.into(),
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
        method,
    }
}

fn bootstrap_method() -> AuthMethod {
    AuthMethod::BootstrapToken(BootstrapTokenInfo {
        id: BootstrapTokenId::parse("abcdef").unwrap(),
        node_name_patterns: vec![],
    })
}

/// The identities of the matrix, by name.
fn identities() -> Vec<(&'static str, Identity)> {
    use AuthMethod::{ClientCertificate as Cert, StaticToken as Static};
    vec![
        ("admin-group", ident("alice", &["system:masters"], Cert)),
        ("admin-user", ident("kubesigner-admin", &[], Static)),
        (
            "bootstrap-token",
            ident(
                "system:bootstrap:abcdef",
                &["system:bootstrappers"],
                bootstrap_method(),
            ),
        ),
        (
            "static-bootstrap",
            ident("kubelet-bootstrap", &["system:kubelet-bootstrap"], Static),
        ),
        ("node-a", ident("system:node:a", &["system:nodes"], Cert)),
        ("node-b", ident("system:node:b", &["system:nodes"], Cert)),
        ("random", ident("random", &[], Static)),
    ]
}

fn cfg() -> AuthzConfig {
    AuthzConfig {
        admin_users: vec!["kubesigner-admin".into()],
        ..AuthzConfig::default()
    }
}

/// Which CSR a cell is about.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Requested by the caller (for a node: its own renewal).
    Own,
    /// Requested by someone else for another node.
    Other,
    /// Node A's renewal (requested by node A, CN system:node:a).
    NodeARenewal,
    /// Node A's bootstrap CSR, requested with bootstrap token abcdef.
    NodeABootstrap,
    /// No CSR: a collection, discovery, or a name that does not exist.
    None,
}

fn facts<'a>(id: &'a Identity, t: Target) -> Option<CsrFacts<'a>> {
    let own_cn = if id.user.starts_with("system:node:") {
        id.user.as_str()
    } else {
        "system:node:new"
    };
    let (requester, cn) = match t {
        Target::Own => (id.user.as_str(), own_cn),
        Target::Other => ("someone-else", "system:node:zzz"),
        Target::NodeARenewal => ("system:node:a", "system:node:a"),
        Target::NodeABootstrap => ("system:bootstrap:abcdef", "system:node:a"),
        Target::None => return None,
    };
    Some(CsrFacts {
        requester_username: requester,
        subject_cn: Some(cn),
        signer_name: KUBELET_CLIENT_SIGNER,
    })
}

/// The matrix columns.
const COLUMNS: [(Verb, Target); 17] = [
    (Verb::Get, Target::Own),
    (Verb::Get, Target::Other),
    (Verb::Get, Target::NodeARenewal),
    (Verb::Get, Target::NodeABootstrap),
    (Verb::Get, Target::None),
    (Verb::List, Target::None),
    (Verb::Watch, Target::None),
    (Verb::Watch, Target::NodeARenewal),
    (Verb::Delete, Target::Own),
    (Verb::Delete, Target::Other),
    (Verb::UpdateApproval, Target::Own),
    (Verb::UpdateApproval, Target::NodeARenewal),
    (Verb::UpdateStatus, Target::Own),
    (Verb::UpdateStatus, Target::NodeARenewal),
    (Verb::Update, Target::Own),
    (Verb::Update, Target::Other),
    (Verb::Discovery, Target::None),
];

/// Expected answers per identity, one character per column (Y = allowed, . = 403); spaces
/// only group the columns: get (own, other, A renewal, A bootstrap, missing), list, watch
/// (all, A renewal), delete (own, other), approval (own, A), status (own, A), update (own,
/// other), discovery.
const EXPECTED: [(&str, &str); 7] = [
    ("admin-group", /*     */ "YYYYY Y YY YY YY .. YY Y"),
    ("admin-user", /*      */ "YYYYY Y YY YY YY .. YY Y"),
    ("bootstrap-token", /* */ "Y..YY Y Y. .. .. .. .. Y"),
    ("static-bootstrap", /**/ "Y...Y Y Y. .. .. .. .. Y"),
    ("node-a", /*          */ "Y.YYY Y YY .. .. .. .. Y"),
    ("node-b", /*          */ "Y...Y Y Y. .. .. .. .. Y"),
    ("random", /*          */ "Y.... . .. .. .. .. .. Y"),
];

#[test]
fn matrix() {
    let cfg = cfg();
    let ids = identities();
    let mut failures = Vec::new();
    for (name, row) in EXPECTED {
        let id = &ids.iter().find(|(n, _)| *n == name).unwrap().1;
        let cells: Vec<char> = row.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(cells.len(), COLUMNS.len(), "row {name}");
        for ((verb, target), want) in COLUMNS.iter().zip(cells) {
            let got = authorize(id, *verb, facts(id, *target).as_ref(), &cfg).is_ok();
            if got != (want == 'Y') {
                failures.push(format!(
                    "{name} {verb:?} {target:?}: want {want}, got {got}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Create cases: (identity, signer, subject CN, allowed).
const CREATES: &[(&str, &str, Option<&str>, bool)] = &[
    (
        "admin-group",
        KUBELET_CLIENT_SIGNER,
        Some("system:node:x"),
        true,
    ),
    ("admin-group", "example.com/custom", Some("anything"), true),
    (
        "admin-user",
        "kubernetes.io/kube-apiserver-client",
        Some("x"),
        true,
    ),
    (
        "bootstrap-token",
        KUBELET_CLIENT_SIGNER,
        Some("system:node:new"),
        true,
    ),
    (
        "bootstrap-token",
        KUBELET_SERVING_SIGNER,
        Some("system:node:new"),
        false,
    ),
    (
        "bootstrap-token",
        "kubernetes.io/kube-apiserver-client",
        Some("system:node:new"),
        false,
    ),
    (
        "static-bootstrap",
        KUBELET_CLIENT_SIGNER,
        Some("system:node:new"),
        true,
    ),
    (
        "static-bootstrap",
        KUBELET_SERVING_SIGNER,
        Some("system:node:new"),
        false,
    ),
    ("node-a", KUBELET_CLIENT_SIGNER, Some("system:node:a"), true),
    (
        "node-a",
        KUBELET_SERVING_SIGNER,
        Some("system:node:a"),
        true,
    ),
    (
        "node-a",
        KUBELET_CLIENT_SIGNER,
        Some("system:node:b"),
        false,
    ),
    (
        "node-a",
        KUBELET_SERVING_SIGNER,
        Some("system:node:b"),
        false,
    ),
    ("node-a", KUBELET_CLIENT_SIGNER, None, false),
    (
        "node-a",
        "kubernetes.io/kube-apiserver-client",
        Some("system:node:a"),
        false,
    ),
    (
        "node-b",
        KUBELET_SERVING_SIGNER,
        Some("system:node:a"),
        false,
    ),
    (
        "random",
        KUBELET_CLIENT_SIGNER,
        Some("system:node:r"),
        false,
    ),
    ("random", KUBELET_SERVING_SIGNER, Some("random"), false),
];

#[test]
fn create_cases() {
    let cfg = cfg();
    let ids = identities();
    table::check_all(
        CREATES,
        |(name, signer, cn, _)| format!("{name} create {signer} {cn:?}"),
        |&&(name, signer, cn, want)| {
            let id = &ids.iter().find(|(n, _)| *n == name).unwrap().1;
            let csr = CsrFacts {
                requester_username: &id.user,
                subject_cn: cn,
                signer_name: signer,
            };
            let got = authorize(id, Verb::Create, Some(&csr), &cfg);
            assert_eq!(got.is_ok(), want, "{got:?}");
        },
    );
    let random = &ids.iter().find(|(n, _)| *n == "random").unwrap().1;
    assert!(authorize(random, Verb::Create, None, &cfg).is_err());
}

#[test]
fn node_user_without_nodes_group_is_not_a_node() {
    let fake = ident("system:node:a", &[], AuthMethod::StaticToken);
    let csr = CsrFacts {
        requester_username: "system:bootstrap:abcdef",
        subject_cn: Some("system:node:a"),
        signer_name: KUBELET_SERVING_SIGNER,
    };
    let cfg = cfg();
    assert!(!owns(&fake, &csr));
    assert!(authorize(&fake, Verb::Create, Some(&csr), &cfg).is_err());
    assert!(authorize(&fake, Verb::Get, Some(&csr), &cfg).is_err());
}

#[test]
fn extra_bootstrap_groups_match_the_prefix() {
    let cfg = cfg();
    let id = ident(
        "x",
        &["system:bootstrappers:kubeadm:default-node-token"],
        AuthMethod::StaticToken,
    );
    let csr = CsrFacts {
        requester_username: "x",
        subject_cn: Some("system:node:n"),
        signer_name: KUBELET_CLIENT_SIGNER,
    };
    assert!(authorize(&id, Verb::Create, Some(&csr), &cfg).is_ok());
    let none = AuthzConfig {
        bootstrap_groups: vec![],
        ..cfg
    };
    assert!(authorize(&id, Verb::Create, Some(&csr), &none).is_err());
}

#[test]
fn forbidden_message_is_client_safe_and_specific() {
    let cfg = cfg();
    let ids = identities();
    let id = &ids.iter().find(|(n, _)| *n == "bootstrap-token").unwrap().1;
    let csr = CsrFacts {
        requester_username: &id.user,
        subject_cn: Some("system:node:n"),
        signer_name: KUBELET_SERVING_SIGNER,
    };
    let err = authorize(id, Verb::Create, Some(&csr), &cfg).unwrap_err();
    assert_eq!(
        err.message,
        "user \"system:bootstrap:abcdef\" cannot create certificatesigningrequests with signerName \"kubernetes.io/kubelet-serving\""
    );
    let admin = &ids.iter().find(|(n, _)| *n == "admin-group").unwrap().1;
    assert!(is_admin(admin, &cfg));
    let err = authorize(admin, Verb::UpdateStatus, Some(&csr), &cfg).unwrap_err();
    assert!(
        err.message.contains("certificatesigningrequests/status"),
        "{}",
        err.message
    );
}

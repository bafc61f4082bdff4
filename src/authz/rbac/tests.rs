use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::authn::AuthMethod;

fn id(user: &str, groups: &[&str]) -> Identity {
    Identity {
        user: user.to_owned(),
        uid: String::new(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        extra: BTreeMap::new(),
        method: AuthMethod::StaticToken,
    }
}

fn req<'a>(verb: &'a str, resource: &'a str, sub: Option<&'a str>) -> Request<'a> {
    Request {
        verb,
        api_group: "certificates.k8s.io",
        resource,
        subresource: sub,
        name: None,
        namespace: None,
    }
}

const POLICY: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: sa, namespace: ns1}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules:
  - apiGroups: ["certificates.k8s.io"]
    resources: ["certificatesigningrequests", "*/status"]
    verbs: ["get", "list"]
  - apiGroups: ["certificates.k8s.io"]
    resources: ["signers"]
    resourceNames: ["example.com/a"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects:
  - {kind: ServiceAccount, name: sa, namespace: ns1}
  - {kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leases, namespace: ns1}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leases, namespace: ns1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leases}
subjects:
  - {kind: Group, name: team}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: missing, namespace: ns1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: not-defined}
subjects:
  - {kind: Group, name: "system:authenticated"}
"#;

fn policy() -> Rbac {
    Rbac::parse(Path::new("p.yaml"), POLICY).unwrap()
}

#[test]
fn service_account_user_and_cluster_binding() {
    let p = policy();
    let sa = id("system:serviceaccount:ns1:sa", &["system:serviceaccounts"]);
    assert!(p.allows(&sa, &req("list", "certificatesigningrequests", None)));
    assert!(p.allows(
        &sa,
        &req("get", "certificatesigningrequests", Some("status"))
    ));
    assert!(!p.allows(&sa, &req("update", "certificatesigningrequests", None)));
    assert!(!p.allows(
        &sa,
        &req("get", "certificatesigningrequests", Some("approval"))
    ));
    let other_ns = id("system:serviceaccount:ns2:sa", &[]);
    assert!(!p.allows(&other_ns, &req("list", "certificatesigningrequests", None)));
    let alice = id("alice", &[]);
    assert!(p.allows(&alice, &req("get", "certificatesigningrequests", None)));
    assert!(!p.allows(
        &id("bob", &[]),
        &req("get", "certificatesigningrequests", None)
    ));
}

#[test]
fn resource_names_and_verb_wildcards() {
    let p = policy();
    let alice = id("alice", &[]);
    let mut r = req("sign", "signers", None);
    assert!(
        !p.allows(&alice, &r),
        "no name: a named rule does not match"
    );
    r.name = Some("example.com/a");
    assert!(p.allows(&alice, &r));
    r.name = Some("example.com/b");
    assert!(!p.allows(&alice, &r));
}

#[test]
fn role_bindings_are_namespaced() {
    let p = policy();
    let member = id("carol", &["team"]);
    let lease = |ns: Option<&'static str>| Request {
        verb: "get",
        api_group: "coordination.k8s.io",
        resource: "leases",
        subresource: None,
        name: Some("l"),
        namespace: ns,
    };
    assert!(p.allows(&member, &lease(Some("ns1"))));
    assert!(!p.allows(&member, &lease(Some("ns2"))));
    assert!(
        !p.allows(&member, &lease(None)),
        "cluster scope is not granted"
    );
    assert_eq!(
        p.bindings(),
        2,
        "the binding to an undefined role grants nothing"
    );
}

#[test]
fn invalid_manifests_are_refused() {
    for bad in [
        "kind: ClusterRole\nmetadata: {name: x}\nrules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n",
        "kind: ClusterRole\nmetadata: {name: x}\nrules:\n  - verbs: [get]\n    resources: [pods]\n",
        "kind: ClusterRoleBinding\nmetadata: {name: x}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n",
        "kind: RoleBinding\nmetadata: {name: x}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects: [{kind: Robot, name: r}]\n",
        "kind: ClusterRole\nmetadata: {}\nrules: []\n",
        "metadata: {name: x}\n",
        "kind: [unclosed\n",
    ] {
        assert!(
            matches!(
                Rbac::parse(Path::new("bad.yaml"), bad),
                Err(RbacError::Invalid { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn deploy_rbac_yaml_grants_the_controller() {
    let text = include_str!("../../../deploy/rbac.yaml");
    let p = Rbac::parse(Path::new("deploy/rbac.yaml"), text).unwrap();
    let sa = id(
        "system:serviceaccount:kubesigner:kubesigner",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kubesigner",
        ],
    );
    assert!(p.allows(&sa, &req("watch", "certificatesigningrequests", None)));
    assert!(p.allows(
        &sa,
        &req("patch", "certificatesigningrequests", Some("status"))
    ));
    assert!(p.allows(
        &sa,
        &req("update", "certificatesigningrequests", Some("approval"))
    ));
    assert!(!p.allows(&sa, &req("delete", "certificatesigningrequests", None)));
    // Active-active: the claim annotation (a conditional PUT), never a patch of the object.
    assert!(p.allows(&sa, &req("update", "certificatesigningrequests", None)));
    assert!(!p.allows(&sa, &req("patch", "certificatesigningrequests", None)));
    for signer in [
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/kubelet-serving",
    ] {
        for verb in ["approve", "sign"] {
            let mut r = req(verb, "signers", None);
            r.name = Some(signer);
            assert!(p.allows(&sa, &r), "{verb} {signer}");
        }
    }
    let mut r = req("sign", "signers", None);
    r.name = Some("kubernetes.io/kube-apiserver-client");
    assert!(!p.allows(&sa, &r));
    let lease = |verb: &'static str, name: Option<&'static str>| Request {
        verb,
        api_group: "coordination.k8s.io",
        resource: "leases",
        subresource: None,
        name,
        namespace: Some("kube-system"),
    };
    assert!(p.allows(&sa, &lease("create", None)));
    assert!(p.allows(&sa, &lease("update", Some("kubesigner-controller"))));
    assert!(!p.allows(&sa, &lease("update", Some("other"))));
    assert!(!p.allows(&sa, &lease("list", None)));
    assert!(!p.allows(&id("someone", &[]), &lease("create", None)));
    // Active-active members: any Lease, but only in the kubesigner namespace.
    let member = |verb: &'static str, name: Option<&'static str>| Request {
        namespace: Some("kubesigner"),
        ..lease(verb, name)
    };
    for verb in ["create", "get", "list", "update", "delete"] {
        assert!(
            p.allows(&sa, &member(verb, Some("kubesigner-controller-r0"))),
            "{verb}"
        );
    }
    assert!(!p.allows(&sa, &member("patch", Some("kubesigner-controller-r0"))));
    assert!(!p.allows(&sa, &lease("delete", Some("kubesigner-controller"))));
    assert!(!p.allows(&sa, &lease("update", Some("kube-scheduler"))));
}

#[test]
fn csr_requests_match_resource_names_through_authorize_named() {
    use crate::authz::{AuthzConfig, SharedRbac, Verb, authorize, authorize_named};
    let text = r#"
kind: ClusterRole
metadata: {name: one}
rules:
  - apiGroups: ["certificates.k8s.io"]
    resources: ["certificatesigningrequests", "certificatesigningrequests/status"]
    resourceNames: ["csr-a"]
    verbs: ["get", "update"]
---
kind: ClusterRoleBinding
metadata: {name: one}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: one}
subjects: [{kind: User, name: dave}]
"#;
    let cfg = AuthzConfig {
        rbac: Some(SharedRbac(std::sync::Arc::new(
            Rbac::parse(Path::new("one.yaml"), text).unwrap(),
        ))),
        ..AuthzConfig::default()
    };
    let dave = id("dave", &["system:authenticated"]);
    assert!(authorize_named(&dave, Verb::Get, None, Some("csr-a"), &cfg).is_ok());
    assert!(authorize_named(&dave, Verb::UpdateStatus, None, Some("csr-a"), &cfg).is_ok());
    assert!(authorize_named(&dave, Verb::PatchStatus, None, Some("csr-a"), &cfg).is_err());
    assert!(authorize_named(&dave, Verb::Get, None, Some("csr-b"), &cfg).is_err());
    assert!(authorize(&dave, Verb::List, None, &cfg).is_err());
    let without = AuthzConfig::default();
    assert!(authorize_named(&dave, Verb::Get, None, Some("csr-a"), &without).is_err());
}

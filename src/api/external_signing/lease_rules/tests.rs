use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};

use super::*;

#[test]
fn names_and_namespaces_are_dns() {
    assert!(dns_name("kubesigner-controller", MAX_NAME, true));
    assert!(dns_name("a.b-c", MAX_NAME, true));
    assert!(!dns_name("a.b", MAX_NAMESPACE, false));
    assert!(!dns_name("", MAX_NAME, true));
    assert!(!dns_name("-a", MAX_NAME, true));
    assert!(!dns_name("A", MAX_NAME, true));
    assert!(!dns_name(&"a".repeat(64), MAX_NAMESPACE, false));
}

#[test]
fn spec_bounds() {
    let lease = |spec: LeaseSpec| Lease {
        metadata: Default::default(),
        spec: Some(spec),
    };
    assert!(validate(&lease(LeaseSpec::default()), "l").is_ok());
    let zero = LeaseSpec {
        lease_duration_seconds: Some(0),
        ..Default::default()
    };
    assert!(validate(&lease(zero), "l").is_err());
    let negative = LeaseSpec {
        lease_transitions: Some(-1),
        ..Default::default()
    };
    assert!(validate(&lease(negative), "l").is_err());
    let long = LeaseSpec {
        holder_identity: Some("h".repeat(MAX_HOLDER + 1)),
        ..Default::default()
    };
    assert!(validate(&lease(long), "l").is_err());
    assert!(validate(&lease(LeaseSpec::default()), "Bad_Name").is_err());
}

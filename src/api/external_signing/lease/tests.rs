use super::*;

#[test]
fn paths() {
    assert!(matches!(target("/leases"), Some(Target::All)));
    assert!(matches!(
        target("/namespaces/ns/leases"),
        Some(Target::Collection("ns"))
    ));
    assert!(matches!(
        target("/namespaces/ns/leases/l"),
        Some(Target::One("ns", "l"))
    ));
    assert!(target("/namespaces/ns/leases/l/status").is_none());
    assert!(target("x/leases").is_none());
}

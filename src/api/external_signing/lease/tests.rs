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

#[test]
fn delete_preconditions_are_read_from_delete_options() {
    assert_eq!(delete_precondition(b"", "l").unwrap(), None);
    assert_eq!(delete_precondition(b" \n", "l").unwrap(), None);
    assert_eq!(
        delete_precondition(br#"{"kind":"DeleteOptions","apiVersion":"v1"}"#, "l").unwrap(),
        None
    );
    assert_eq!(
        delete_precondition(br#"{"preconditions":{"resourceVersion":"42"}}"#, "l").unwrap(),
        Some(42)
    );
    assert!(delete_precondition(br#"{"preconditions":{"resourceVersion":"x"}}"#, "l").is_err());
    assert!(delete_precondition(b"{not json", "l").is_err());
}

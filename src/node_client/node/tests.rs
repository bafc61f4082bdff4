//! Unit tests for `node.rs`.

use super::*;

#[test]
fn node_names_follow_dns_1123() {
    for ok in ["node1", "worker-1.example.com", "a", "1-2"] {
        assert_eq!(parse(ok).unwrap().as_str(), ok);
    }
    for bad in [
        "",
        "Node1",
        "-a",
        "a-",
        "a..b",
        "a_b",
        "a b",
        "node:1",
        &"a".repeat(64),
    ] {
        assert!(parse(bad).is_err(), "{bad:?} accepted");
    }
    let long = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(63),
    ]
    .join(".");
    assert!(parse(&long).is_err());
    assert_eq!(parse("n").unwrap().user_name(), "system:node:n");
}

#[test]
fn hostname_is_a_node_name_here() {
    // The test machine's host name is a valid DNS name; it is lower-cased.
    let n = from_hostname().unwrap();
    assert_eq!(n.as_str(), n.as_str().to_lowercase());
}

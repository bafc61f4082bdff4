//! Unit tests for `inventory.rs`.

use super::*;

const GOOD: &str = r#"
[nodes.node1]
addresses = ["10.0.0.5", "fd00::5"]
cidrs = ["10.0.1.0/24"]
dns_names = ["node1", "Node1.Example.com"]

[nodes.node2]
"#;

fn n(s: &str) -> NodeName {
    NodeName::parse(s).unwrap()
}

#[test]
fn parses_and_matches() {
    let inv = NodeInventory::parse(GOOD).unwrap();
    assert_eq!(inv.len(), 2);
    let e = inv.get(&n("node1")).unwrap();
    assert!(e.allows(&San::Ip("10.0.0.5".parse().unwrap())));
    assert!(e.allows(&San::Ip("fd00::5".parse().unwrap())));
    assert!(e.allows(&San::Ip("10.0.1.77".parse().unwrap())));
    assert!(!e.allows(&San::Ip("10.0.2.1".parse().unwrap())));
    assert!(e.allows(&San::Dns("node1.example.com".into())));
    assert!(e.allows(&San::Dns("NODE1".into())));
    assert!(!e.allows(&San::Dns("node2".into())));
    assert!(!e.allows(&San::Email("a@b".into())));
    assert!(inv.get(&n("node2")).unwrap().dns_names.is_empty());
    assert!(inv.get(&n("node3")).is_none());
}

#[test]
fn refuses_bad_files() {
    assert!(matches!(
        NodeInventory::parse("[nodes.Bad_Name]\n"),
        Err(InventoryError::NodeName { .. })
    ));
    assert!(matches!(
        NodeInventory::parse("[nodes.a]\naddresses = [\"10.0.0.300\"]\n"),
        Err(InventoryError::Parse { .. })
    ));
    assert!(matches!(
        NodeInventory::parse("[nodes.a]\ncidrs = [\"10.0.0.0/33\"]\n"),
        Err(InventoryError::Parse { .. })
    ));
    assert!(matches!(
        NodeInventory::parse("[nodes.a]\ndns_names = [\"*.x\"]\n"),
        Err(InventoryError::DnsName { .. })
    ));
    assert!(matches!(
        NodeInventory::parse("[nodes.a]\nmacs = []\n"),
        Err(InventoryError::Parse { .. })
    ));
    let many: Vec<String> = (0..=MAX_ENTRIES_PER_NODE)
        .map(|i| format!("\"10.0.{}.{}\"", i / 256, i % 256))
        .collect();
    let text = format!("[nodes.a]\naddresses = [{}]\n", many.join(","));
    assert!(matches!(
        NodeInventory::parse(&text),
        Err(InventoryError::TooMany { .. })
    ));
}

use super::*;

#[test]
fn rule_names_become_condition_reasons() {
    assert_eq!(reason_of("node_disabled"), "NodeDisabled");
    assert_eq!(reason_of("token_node_binding"), "TokenNodeBinding");
    assert_eq!(reason_of(""), "");
}

#[test]
fn first_address_only_when_asked() {
    let node = NodeState {
        first_bootstrap_address: Some([10, 0, 0, 1].into()),
        latest_not_after_unix: Some(5),
        ..NodeState::default()
    };
    assert!(
        node_facts(&node, None, false)
            .first_bootstrap_address
            .is_none()
    );
    let f = node_facts(&node, None, true);
    assert_eq!(f.first_bootstrap_address, Some([10, 0, 0, 1].into()));
    assert_eq!(f.latest_client_cert_not_after, Some(from_unix(5)));
}

use super::*;

#[test]
fn bindings_apply_to_listed_bootstrap_tokens_only() {
    let mut cfg = BTreeMap::new();
    cfg.insert("abcdef".to_owned(), NodePatterns::One("node-a*".to_owned()));
    cfg.insert(
        "ghijkl".to_owned(),
        NodePatterns::Many(vec!["x".to_owned(), "y-*".to_owned()]),
    );
    let b = TokenBindings::new(&cfg).unwrap();
    let a = b.for_username("system:bootstrap:abcdef").unwrap();
    assert!(a.is_match("node-a1"));
    assert!(!a.is_match("node-b1"));
    let g = b.for_username("system:bootstrap:ghijkl").unwrap();
    assert!(g.is_match("y-1") && g.is_match("x") && !g.is_match("z"));
    assert!(b.for_username("system:bootstrap:zzzzzz").is_none());
    assert!(b.for_username("abcdef").is_none());
    assert!(b.for_username("system:node:abcdef").is_none());
}

#[test]
fn bad_pattern_is_a_config_error() {
    let mut cfg = BTreeMap::new();
    cfg.insert("abcdef".to_owned(), NodePatterns::One("node-[".to_owned()));
    assert!(matches!(
        TokenBindings::new(&cfg),
        Err(ControllerConfigError::TokenBinding { .. })
    ));
}

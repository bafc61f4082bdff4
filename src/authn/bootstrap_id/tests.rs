//! Unit tests for `bootstrap_id.rs`.

use super::*;

#[test]
fn token_parses_only_kubeadm_format() {
    let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
    assert_eq!(t.id.as_str(), "abcdef");
    assert_eq!(t.id.user_name(), "system:bootstrap:abcdef");
    assert_eq!(
        t.to_secret_string().expose_secret(),
        "abcdef.0123456789abcdef"
    );
    for bad in [
        "",
        "abcdef",
        "abcdef.",
        "ABCDEF.0123456789abcdef",
        "abcde.0123456789abcdef",
        "abcdef.0123456789abcde",
        "abcdef.0123456789abcdeff",
        "abcdef:0123456789abcdef",
        "abcdef.0123456789abcdeF",
        "abcdef.0123456789abcde.",
        "02b50b05283e98dd0fd71db496ef01e8",
    ] {
        assert!(BootstrapToken::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn debug_does_not_show_the_secret() {
    let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
    assert!(!format!("{t:?}").contains("0123456789abcdef"));
}

#[test]
fn extra_groups_follow_kubeadm() {
    assert!(is_valid_extra_group(
        "system:bootstrappers:kubeadm:default-node-token"
    ));
    assert!(is_valid_extra_group("system:bootstrappers:a"));
    let long = format!("system:bootstrappers:{}a", "b".repeat(255));
    assert!(is_valid_extra_group(&long));
    let too_long = format!("system:bootstrappers:{}a", "b".repeat(256));
    assert!(!is_valid_extra_group(&too_long));
    for bad in [
        "system:bootstrappers",
        "system:bootstrappers:",
        "system:bootstrappers:x-",
        "system:bootstrappers:X",
        "system:masters",
        "system:bootstrappers:a b",
    ] {
        assert!(!is_valid_extra_group(bad), "{bad}");
    }
}

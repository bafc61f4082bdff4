//! Unit tests for `list.rs`.

use super::*;

#[test]
fn selectors_parse() {
    assert_eq!(parse_selector("a=b,c!=d,e,!f", false).unwrap().len(), 4);
    assert!(parse_selector("env in (a,b)", false).is_err());
    assert!(parse_selector("spec.username=x", true).is_err());
    assert!(parse_selector("metadata.name=x", true).is_ok());
    assert_eq!(decode_continue(&encode_continue(4, "abc")).unwrap(), "abc");
    assert!(decode_continue("!!").is_err());
}

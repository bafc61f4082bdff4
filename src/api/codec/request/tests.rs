//! Unit tests for `request.rs`.

use super::*;

#[test]
fn bools_parse_like_go() {
    let q = Query::parse(Some("a=1&b=True&c=F&d=yes"));
    assert!(q.bool("a").unwrap());
    assert!(q.bool("b").unwrap());
    assert!(!q.bool("c").unwrap());
    assert!(q.bool("d").is_err());
    assert!(!q.bool("missing").unwrap());
}

#[test]
fn depth_and_unknown_fields() {
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    assert!(!depth_ok(deep.as_bytes()));
    assert!(depth_ok(
        br#"{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}"#
    ));
    let body = br#"{"metadata":{"name":"x","creationTimestamp":null,"bogus":1},
                   "spec":{"request":"","signerName":"a/b","extra2":true}}"#;
    let d = decode_csr(body, FieldValidation::Warn).unwrap();
    assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
    assert!(decode_csr(body, FieldValidation::Strict).is_err());
    assert!(
        decode_csr(body, FieldValidation::Ignore)
            .unwrap()
            .warnings
            .is_empty()
    );
    assert!(
        decode_csr(
            br#"{"kind":"Pod","spec":{"request":"","signerName":"a/b"},"metadata":{}}"#,
            FieldValidation::Warn
        )
        .is_err()
    );
}

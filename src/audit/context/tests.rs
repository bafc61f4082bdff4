//! Unit tests for `audit/context.rs`.

use super::*;

#[test]
fn sane_request_ids_are_kept_others_replaced() {
    assert_eq!(request_id(Some(b"abc-123")), "abc-123");
    let long = [b'a'; 65];
    for bad in [&b""[..], b"a b", b"x\n", b"\xff", &long[..]] {
        let id = request_id(Some(bad));
        assert_eq!(id.len(), 32, "{bad:?}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(request_id(None), request_id(None));
}

#[test]
fn thread_context_is_scoped() {
    let ctx = AuditContext {
        request_id: "r1".into(),
        user: "u".into(),
        groups: vec!["g".into()],
    };
    assert_eq!(current(), None);
    let seen = enter(Some(ctx.clone()), current);
    assert_eq!(seen, Some(ctx));
    assert_eq!(current(), None);
}

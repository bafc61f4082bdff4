use super::*;

#[test]
fn bearer_forms() {
    assert_eq!(parse_bearer(b"Bearer abc"), Some("abc"));
    assert_eq!(parse_bearer(b"  bearer   abc  "), Some("abc"));
    assert_eq!(parse_bearer(b"BEARER abc"), Some("abc"));
    for bad in [
        &b""[..],
        b"Bearer",
        b"Bearer ",
        b"Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        b"Bearer a b",
        b"Bearerabc",
        b"Bearer \xff\xfe",
    ] {
        assert_eq!(parse_bearer(bad), None, "{bad:?}");
    }
    let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
    assert_eq!(parse_bearer(long.as_bytes()), None);
}

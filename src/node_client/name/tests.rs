//! Unit tests for `name.rs`.

use super::*;

#[test]
fn csr_names_are_url_safe() {
    for ok in [
        "node-csr-okEnM5GlfS_P9QWK8CQJ5E3l46Iw9WRJ3MnuNpmkCJE",
        "csr-x7k2z",
    ] {
        assert_eq!(CsrName::parse(ok).unwrap().as_str(), ok);
    }
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a%2F",
        "a b",
        "a&watch=true",
        &"a".repeat(254),
    ] {
        assert!(CsrName::parse(bad).is_err(), "{bad:?}");
    }
}

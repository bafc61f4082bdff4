//! Unit tests for `dev.rs`.

use super::*;

#[test]
fn pins_are_long_and_from_the_alphabet() {
    let a = random_pin().unwrap();
    let b = random_pin().unwrap();
    assert_eq!(a.len(), PIN_LEN);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(*a, *b);
}

#[test]
fn generated_config_parses() {
    let t = config_text(
        "127.0.0.1:6443".parse().unwrap(),
        "pkcs11:token=kubesigner-dev;object=kubesigner-ca?module-path=/m.so&pin-source=file:/d/pin",
        &[("SOFTHSM2_CONF".to_owned(), "/d/softhsm2.conf".to_owned())].into(),
    );
    let cfg = crate::config::Config::parse(&t).unwrap();
    assert_eq!(cfg.signer.environment["SOFTHSM2_CONF"], "/d/softhsm2.conf");
}

//! The RFC 7512 parser over a table of real-world and bad URIs; PIN file rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::table;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use kubesigner::signer::{
    Pin, PinError, Pkcs11Uri, TokenSelector, UriError, UriOrigin, parse_env_args,
};

const M: &str = "module-path=/usr/lib/softhsm/libsofthsm2.so";

fn ok(text: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(text, UriOrigin::ConfigFile).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn bad(text: &str, origin: UriOrigin) -> UriError {
    match Pkcs11Uri::parse(text, origin) {
        Ok(u) => panic!("{text} parsed: {u:?}"),
        Err(e) => e,
    }
}

#[test]
fn step_ca_style() {
    let u = ok(&format!(
        "pkcs11:token=smallstep;id=%01;object=root-key?{M}&pin-source=file:/etc/step/pin&max-sessions=10"
    ));
    assert_eq!(u.token, TokenSelector::Label("smallstep".into()));
    assert_eq!(u.id.as_deref(), Some(&[1u8][..]));
    assert_eq!(u.object.as_deref(), Some("root-key"));
    assert_eq!(
        u.module_path,
        PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
    );
    assert_eq!(u.pin_source, Some(PathBuf::from("/etc/step/pin")));
    assert_eq!(u.max_sessions, Some(10));
}

#[test]
fn p11_kit_style() {
    // As printed by `p11tool --list-all` / `p11-kit list-objects` (minus serial: one selector).
    let u = ok(&format!(
        "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;token=kube%20ca;\
         id=%a1%b2%C3%d4;object=kubernetes%20CA;type=private?{M}"
    ));
    assert_eq!(u.token, TokenSelector::Label("kube ca".into()));
    assert_eq!(u.model.as_deref(), Some("SoftHSM v2"));
    assert_eq!(u.manufacturer.as_deref(), Some("SoftHSM project"));
    assert_eq!(u.id, Some(vec![0xa1, 0xb2, 0xc3, 0xd4]));
    assert_eq!(u.object.as_deref(), Some("kubernetes CA"));
}

#[test]
fn selectors_and_encodings() {
    let table: &[(&str, TokenSelector)] = &[
        (
            "pkcs11:serial=25a7c98a82501b90;id=%02",
            TokenSelector::Serial("25a7c98a82501b90".into()),
        ),
        (
            "pkcs11:slot-id=38804368;object=ca",
            TokenSelector::SlotId(38_804_368),
        ),
        ("PKCS11:token=t;object=ca", TokenSelector::Label("t".into())),
        (
            "pkcs11:token=a%3Bb%3Dc%25;object=ca",
            TokenSelector::Label("a;b=c%".into()),
        ),
    ];
    table::check_all(
        table,
        |(path, _)| (*path).to_owned(),
        |(path, want)| assert_eq!(&ok(&format!("{path}?{M}")).token, want),
    );
    let u = ok(&format!(
        "pkcs11:token=t;id=%00%ff%10?{M}&pin-source=file:///run/pin%20file"
    ));
    assert_eq!(u.id, Some(vec![0, 0xff, 0x10]));
    assert_eq!(u.pin_source, Some(PathBuf::from("/run/pin file")));
    let u = ok(&format!(
        "pkcs11:token=t;object=ca?{M}&pin-source=/etc/kubesigner/pin"
    ));
    assert_eq!(u.pin_source, Some(PathBuf::from("/etc/kubesigner/pin")));
    assert_eq!(u.key_selector(), "object=ca");
}

#[test]
fn bad_uris_name_the_bad_part() {
    let cl = UriOrigin::CommandLine;
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("https://example.com/key", "not a pkcs11: URI"),
        (
            "pkcs11:token=t;object=ca;color=red?module-path=/m.so",
            "\"color\"",
        ),
        (
            "pkcs11:token=t;object=ca?module-path=/m.so&module-name=softhsm2",
            "\"module-name\"",
        ),
        (
            "pkcs11:token=t;serial=1;object=ca?module-path=/m.so",
            "token and serial",
        ),
        (
            "pkcs11:token=t;slot-id=1;object=ca?module-path=/m.so",
            "token and slot-id",
        ),
        ("pkcs11:object=ca?module-path=/m.so", "found none"),
        (
            "pkcs11:token=t;id=%zz?module-path=/m.so",
            "percent-encoding in PKCS#11 URI attribute \"id\"",
        ),
        ("pkcs11:token=t;id=%1?module-path=/m.so", "\"id\""),
        (
            "pkcs11:token=t;object=ca;object=cb?module-path=/m.so",
            "given twice",
        ),
        ("pkcs11:token=t?module-path=/m.so", "id and/or object"),
        ("pkcs11:token=t;object=ca", "module-path"),
        (
            "pkcs11:token=t;object=ca?module-path=/m.so&max-sessions=0",
            "max-sessions",
        ),
        (
            "pkcs11:token=t;object=ca?module-path=/m.so&max-sessions=1000",
            "max-sessions",
        ),
        (
            "pkcs11:token=t;object=ca?module-path=/m.so&pin-source=|/bin/cat",
            "pin-source",
        ),
        (
            "pkcs11:token=t;object=ca;type=cert?module-path=/m.so",
            "\"type\"",
        ),
        (
            "pkcs11:slot-id=x;object=ca?module-path=/m.so",
            "\"slot-id\"",
        ),
        ("pkcs11:token;object=ca?module-path=/m.so", "no '='"),
        ("pkcs11:token=%ff%fe;object=ca?module-path=/m.so", "UTF-8"),
        (
            "pkcs11:token=t;object=ca?module-path=/m.so&pin-value=1234",
            "pin-value is refused",
        ),
    ];
    table::check_all(
        cases,
        |(text, _)| format!("{text:?}"),
        |(text, needle)| {
            let e = bad(text, cl).to_string();
            assert!(
                e.contains(needle),
                "error {e:?} does not contain {needle:?}"
            );
            assert!(!e.contains('\n'), "multi-line error {e:?}");
        },
    );
    assert!(matches!(bad(&"x".repeat(5000), cl), UriError::TooLong));
}

#[test]
fn pin_value_only_from_config_and_redacted() {
    let text = "pkcs11:token=t;object=ca?module-path=/m.so&pin-value=s3cr3t-PIN";
    assert!(matches!(
        Pkcs11Uri::parse(text, UriOrigin::CommandLine),
        Err(UriError::PinValueOnCommandLine)
    ));
    let u = Pkcs11Uri::parse(text, UriOrigin::ConfigFile).unwrap();
    assert!(!format!("{u:?}").contains("s3cr3t"));
    let pin = Pin::load(&u, "unused").unwrap();
    assert!(!format!("{pin:?}").contains("s3cr3t"));
    let both = "pkcs11:token=t;object=ca?module-path=/m.so&pin-value=1&pin-source=/p";
    assert!(matches!(
        Pkcs11Uri::parse(both, UriOrigin::ConfigFile),
        Err(UriError::TwoPins)
    ));
}

#[test]
fn pin_file_rules() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pin");
    std::fs::write(&p, "123456\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        Pin::from_file(&p),
        Err(PinError::Permissions { .. })
    ));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        Pin::from_file(&p),
        Err(PinError::Permissions { .. })
    ));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pin = Pin::from_file(&p).unwrap();
    assert!(!format!("{pin:?}").contains("123456"));
    assert!(matches!(
        Pin::from_file(&dir.path().join("absent")),
        Err(PinError::Read { .. })
    ));
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        Pin::from_file(&empty),
        Err(PinError::Length { .. })
    ));
}

#[test]
fn module_env_arguments() {
    let m = parse_env_args(&[
        "SOFTHSM2_CONF=/a/b=c".into(),
        "P11_KIT_SERVER_ADDRESS=unix:path=/s".into(),
    ])
    .unwrap();
    assert_eq!(m.get("SOFTHSM2_CONF").map(String::as_str), Some("/a/b=c"));
    assert!(parse_env_args(&["NOEQUALS".into()]).is_err());
    assert!(parse_env_args(&["=x".into()]).is_err());
    assert!(parse_env_args(&["BAD-KEY=x".into()]).is_err());
}

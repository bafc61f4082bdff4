//! Unit tests for `usage.rs`.

use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_wire_string_round_trips() {
    for (u, s) in ALL {
        assert_eq!(Usage::parse(s), Some(u));
        assert_eq!(u.as_str(), s);
    }
}

#[test]
fn refuses_empty_unknown_and_duplicates() {
    assert_eq!(UsageSet::parse(&[]), Err(UsageError::Empty));
    assert!(matches!(
        UsageSet::parse(&strings(&["client auth", "Client Auth"])),
        Err(UsageError::Unknown { .. })
    ));
    assert_eq!(
        UsageSet::parse(&strings(&["client auth", "client auth"])),
        Err(UsageError::Duplicate {
            value: Usage::ClientAuth
        })
    );
    let ok = UsageSet::parse(&strings(&["digital signature", "client auth"])).unwrap();
    assert!(ok.contains(Usage::ClientAuth));
    assert_eq!(ok.describe(), "digital signature, client auth");
}

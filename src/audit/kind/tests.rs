//! Unit tests for `kind.rs`: the written names are the ones the hash covers, both ways.

use super::*;

#[test]
fn serde_writes_and_reads_exactly_as_str() {
    for k in Kind::ALL {
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, format!("\"{}\"", k.as_str()));
        assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), k);
    }
    let names: std::collections::BTreeSet<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), Kind::ALL.len(), "names are distinct");
    assert!(serde_json::from_str::<Kind>("\"issued\"").is_err());
    assert!(serde_json::from_str::<Kind>("\"signature-spent\"").is_err());
}

#[test]
fn signature_kinds_are_the_five_that_sign() {
    let signing: Vec<_> = Kind::ALL.into_iter().filter(|k| k.is_signature()).collect();
    assert_eq!(
        signing,
        [
            Kind::Issue,
            Kind::SignatureSpent,
            Kind::ServingCertificate,
            Kind::AdminCertificate,
            Kind::CaSelfSigned
        ]
    );
}

use super::*;

use der::{Decode, Encode};
use proptest::prelude::*;

/// The common types, one uncommon type with a name (pseudonym) and one without (1.2.3.4).
fn any_oid() -> impl Strategy<Value = ObjectIdentifier> {
    let mut all: Vec<ObjectIdentifier> = COMMON.to_vec();
    all.push(ObjectIdentifier::new_unwrap("2.5.4.65"));
    all.push(ObjectIdentifier::new_unwrap("1.2.3.4"));
    proptest::sample::select(all)
}

/// Text that exercises every escape: leading '#' and ' ', trailing ' ', the specials, control
/// characters, DEL and non-ASCII.
fn any_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'z'),
            1 => proptest::sample::select(vec![
                '#', ' ', '"', '+', ',', ';', '<', '>', '\\', '=', '\x00', '\x1f', '\x7f', 'é',
                '世', '-', '.', ':'
            ]),
        ],
        0..12,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

/// A value of each tag x509-cert writes as text, and two it writes as DER hex.
fn any_value() -> impl Strategy<Value = Any> {
    (0u8..6, any_text()).prop_filter_map("not valid for the string type", |(t, s)| match t {
        0 => Utf8StringRef::new(&s).ok().map(Any::from),
        1 => PrintableStringRef::new(&s).ok().map(Any::from),
        2 => Ia5StringRef::new(&s).ok().map(Any::from),
        3 => TeletexStringRef::new(&s).ok().map(Any::from),
        4 => Any::new(
            Tag::BmpString,
            s.encode_utf16()
                .flat_map(u16::to_be_bytes)
                .collect::<Vec<u8>>(),
        )
        .ok(),
        _ => Any::new(Tag::OctetString, s.into_bytes()).ok(),
    })
}

fn any_name() -> impl Strategy<Value = Name> {
    let atv =
        (any_oid(), any_value()).prop_map(|(oid, value)| AttributeTypeAndValue { oid, value });
    let rdn = proptest::collection::vec(atv, 1..3).prop_filter_map("duplicate attribute", |atvs| {
        SetOfVec::try_from(atvs)
            .ok()
            .map(RelativeDistinguishedName::from)
    });
    proptest::collection::vec(rdn, 0..5).prop_filter_map("not a Name", |rdns| {
        let der = RdnSequence::from(rdns).to_der().ok()?;
        Name::from_der(&der).ok()
    })
}

proptest! {
    #[test]
    fn writes_what_x509_cert_display_writes(name in any_name()) {
        prop_assert_eq!(rfc4514(&name), name.to_string());
    }
}

#[test]
fn every_common_type_has_the_key_x509_cert_writes() {
    let keys: Vec<(String, Option<String>)> = KEYS
        .iter()
        .map(|(oid, k)| (oid.to_string(), k.clone()))
        .collect();
    for (oid, key) in &keys {
        assert!(key.is_some(), "no name for {oid}: {keys:?}");
    }
    let cn = keys
        .iter()
        .find(|(o, _)| o == "2.5.4.3")
        .and_then(|(_, k)| k.clone());
    assert_eq!(cn.as_deref(), Some("CN"));
}

#[test]
fn a_kubelet_subject_reads_as_before() {
    let name: Name = "CN=system:node:worker-1,O=system:nodes"
        .parse()
        .expect("name");
    assert_eq!(rfc4514(&name), name.to_string());
    assert_eq!(rfc4514(&name), "CN=system:node:worker-1,O=system:nodes");
}

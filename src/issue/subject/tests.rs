use der::asn1::Any;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::*;

/// A value of `tag` holding `bytes`.
fn value(tag: Tag, bytes: &[u8]) -> Any {
    Any::new(tag, bytes).unwrap()
}

fn name_of(attrs: &[(der::oid::ObjectIdentifier, Any)]) -> Name {
    let mut rdns = RdnSequence::default();
    for (oid, v) in attrs {
        let mut rdn = RelativeDistinguishedName::default();
        rdn.insert(AttributeTypeAndValue {
            oid: *oid,
            value: v.clone(),
        })
        .unwrap();
        rdns.push(rdn);
    }
    use der::{Decode, Encode};
    Name::from_der(&rdns.to_der().unwrap()).unwrap()
}

fn node(o: Any, cn: Any) -> Subject {
    Subject::decode(name_of(&[(oids::ORGANIZATION, o), (oids::COMMON_NAME, cn)]))
}

#[test]
fn every_supported_string_type_decodes_to_its_characters() {
    let masters = "system:masters";
    let bmp: Vec<u8> = masters
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    for (tag, bytes, ty) in [
        (
            Tag::Utf8String,
            masters.as_bytes().to_vec(),
            StringType::Utf8,
        ),
        (Tag::Ia5String, masters.as_bytes().to_vec(), StringType::Ia5),
        (
            Tag::VisibleString,
            masters.as_bytes().to_vec(),
            StringType::Visible,
        ),
        (
            Tag::TeletexString,
            masters.as_bytes().to_vec(),
            StringType::Teletex,
        ),
        (Tag::BmpString, bmp, StringType::Bmp),
    ] {
        assert_eq!(
            decode_value(&value(tag, &bytes)),
            AttrValue::Text {
                string_type: ty,
                value: masters.to_owned()
            },
            "{tag}"
        );
    }
}

#[test]
fn invalid_or_unsupported_values_are_never_read_as_text() {
    for (tag, bytes) in [
        (Tag::Utf8String, &b"\xff\xfe"[..]),
        (Tag::PrintableString, b"system@masters"),
        (Tag::Ia5String, b"\x80"),
        (Tag::VisibleString, b"a\nb"),
        (Tag::BmpString, b"\x00"),
        (Tag::OctetString, b"system:masters"),
        (Tag::NumericString, b"123"),
    ] {
        let v = decode_value(&value(tag, bytes));
        assert!(matches!(v, AttrValue::Unsupported { .. }), "{tag}: {v:?}");
        assert_eq!(v.text(), None);
    }
}

#[test]
fn node_profiles_accept_utf8_and_printable_only() {
    let cn = "system:node:n1";
    let ok = node(
        value(Tag::Utf8String, b"system:nodes"),
        value(Tag::Utf8String, cn.as_bytes()),
    );
    assert_eq!(node_subject(&ok).unwrap().as_str(), "n1");
    for tag in [Tag::Ia5String, Tag::VisibleString, Tag::TeletexString] {
        let s = node(
            value(tag, b"system:nodes"),
            value(Tag::Utf8String, cn.as_bytes()),
        );
        let e = node_subject(&s).unwrap_err();
        assert_eq!(e.rule, Rule::SubjectStringType, "{tag}");
        let s = node(
            value(Tag::Utf8String, b"system:nodes"),
            value(tag, cn.as_bytes()),
        );
        assert_eq!(node_subject(&s).unwrap_err().rule, Rule::SubjectStringType);
    }
}

#[test]
fn the_common_name_is_the_single_decoded_cn() {
    let two = Subject::decode(name_of(&[
        (oids::COMMON_NAME, value(Tag::Utf8String, b"a")),
        (oids::COMMON_NAME, value(Tag::Utf8String, b"b")),
    ]));
    assert_eq!(two.common_name(), None);
    let ia5 = Subject::decode(name_of(&[(
        oids::COMMON_NAME,
        value(Tag::Ia5String, b"system:node:x"),
    )]));
    assert_eq!(ia5.common_name(), Some("system:node:x"));
    let bad = Subject::decode(name_of(&[(
        oids::COMMON_NAME,
        value(Tag::OctetString, b"system:node:x"),
    )]));
    assert_eq!(bad.common_name(), None);
}

/// The failure message names what was asked in the CSR's terms (value and string type), not
/// Rust's `Option` debug form: it is shown to the operator by `kubectl describe csr`.
#[test]
fn a_wrong_organization_is_named_plainly_in_the_failure() {
    let utf8 = |s: &str| value(Tag::Utf8String, s.as_bytes());
    let e = node_subject(&node(utf8("system:masters"), utf8("system:node:n1"))).unwrap_err();
    assert_eq!(e.rule, Rule::SubjectOrganization);
    assert_eq!(
        e.to_string(),
        "rule subject_organization: requested organizations [\"system:masters\" (UTF8String)], \
         allowed exactly one O, \"system:nodes\""
    );
    // Two O values (the second an admin group) are both named.
    let two = Subject::decode(name_of(&[
        (oids::ORGANIZATION, utf8("system:nodes")),
        (oids::ORGANIZATION, utf8("system:masters")),
        (oids::COMMON_NAME, utf8("system:node:n1")),
    ]));
    let e = node_subject(&two).unwrap_err();
    assert_eq!(e.rule, Rule::SubjectOrganization);
    assert_eq!(
        e.requested,
        "organizations [\"system:nodes\" (UTF8String), \"system:masters\" (UTF8String)]"
    );
}

//! RFC 4514 text of a subject, as x509-cert's `Display` writes it, without its per-attribute
//! search of the whole OID database.
//!
//! x509-cert names each attribute type with `const_oid::db::DB.shortest_name_by_oid`, which
//! walks every entry of the database (thousands) on every attribute: 1.5 % of the server's CPU
//! per certificate (README, Benchmark). Here the names of the attribute types a subject holds in
//! practice are looked up in the same database once per process; any other attribute type is
//! written by x509-cert itself. The text is the same byte for byte (tested against x509-cert's
//! `Display` on generated names in `rfc4514/tests.rs`), so the audit records keep their form.

use std::fmt::Write as _;
use std::sync::LazyLock;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519;
use der::asn1::SetOfVec;
use der::asn1::{Any, Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

/// Attribute types looked up once: X.520 / RFC 4519 names and the PKCS #9 e-mail address.
const COMMON: [ObjectIdentifier; 14] = [
    rfc4519::CN,
    rfc4519::O,
    rfc4519::OU,
    rfc4519::C,
    rfc4519::ST,
    rfc4519::L,
    rfc4519::STREET,
    rfc4519::SERIAL_NUMBER,
    rfc4519::DC,
    rfc4519::UID,
    rfc4519::TITLE,
    rfc4519::GIVEN_NAME,
    rfc4519::SN,
    // PKCS #9 emailAddress.
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1"),
];

/// Each common type with the key x509-cert writes for it (`None`: it writes the dotted OID).
/// Read from x509-cert itself, once: the text of a probe attribute `<type>=x`.
static KEYS: LazyLock<Vec<(ObjectIdentifier, Option<String>)>> =
    LazyLock::new(|| COMMON.iter().map(|oid| (*oid, key_of(*oid))).collect());

fn key_of(oid: ObjectIdentifier) -> Option<String> {
    let value = Any::from(PrintableStringRef::new("x").ok()?);
    let probe = AttributeTypeAndValue { oid, value }.to_string();
    probe
        .strip_suffix("=x")
        .filter(|k| !k.is_empty() && !k.contains('#'))
        .map(str::to_owned)
}

/// The RFC 4514 text of `name` (the last RDN first), as `name.to_string()` writes it.
pub fn rfc4514(name: &Name) -> String {
    let mut out = String::new();
    let rdns: &RdnSequence = name.as_ref();
    let rdns: &Vec<RelativeDistinguishedName> = rdns.as_ref();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let atvs: &SetOfVec<AttributeTypeAndValue> = rdn.as_ref();
        for (j, atv) in atvs.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_atv(&mut out, atv);
        }
    }
    out
}

fn write_atv(out: &mut String, atv: &AttributeTypeAndValue) {
    let key = KEYS.iter().find(|(oid, _)| *oid == atv.oid);
    match (key, text(&atv.value)) {
        (Some((_, Some(key))), Some(val)) => {
            out.push_str(key);
            out.push('=');
            escape(out, val);
        }
        // An uncommon type, a type without a name or a value that is not a string: written by
        // x509-cert itself (`OID=#<DER hex>` for the last two).
        _ => {
            let _ = write!(out, "{atv}");
        }
    }
}

/// The value as x509-cert reads it for its text form (other string types: none).
fn text(value: &Any) -> Option<&str> {
    match value.tag() {
        Tag::PrintableString => PrintableStringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::TeletexString => TeletexStringRef::try_from(value).ok().map(|s| s.as_str()),
        _ => None,
    }
}

/// RFC 4514 §2.4 escaping, as x509-cert 0.3 does it.
fn escape(out: &mut String, val: &str) {
    let mut chars = val.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || chars.peek().is_none() => out.push_str("\\ "),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\x00'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\{:02x}", c as u32);
            }
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;

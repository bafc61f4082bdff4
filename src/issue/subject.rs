//! The requested subject, decoded once into typed attributes, and the subject rules shared by
//! the signer profiles.
//!
//! Every attribute value is decoded by its ASN.1 string type (UTF8String, PrintableString,
//! IA5String, VisibleString, BMPString, TeletexString) into the characters a relying party
//! reads. (A UniversalString does not get this far: the DER decoder refuses the whole request,
//! a 422.) Rules compare attributes by OID and decoded value, whatever the string
//! type: an `O=system:masters` in IA5String is the admin group as much as one in UTF8String
//! (Go's parser, so kube-apiserver, reads all of them). A value in any other type is kept as
//! [`AttrValue::Unsupported`] and no rule ever reads it as a string — never as `""`.

use der::asn1::{Any, BmpString, Ia5StringRef, PrintableStringRef};
use der::oid::ObjectIdentifier;
use der::{Tag, Tagged};
use x509_cert::name::Name;

use super::error::{Rule, SignerValidationFailure};
use super::names::{NODES_GROUP, NodeName};
use super::oids;

/// The ASN.1 string types a subject attribute value may be decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringType {
    /// UTF8String.
    Utf8,
    /// PrintableString.
    Printable,
    /// IA5String (ASCII).
    Ia5,
    /// VisibleString (printable ASCII).
    Visible,
    /// BMPString (UCS-2, big-endian).
    Bmp,
    /// TeletexString (T.61), read as ISO 8859-1 as Go's parser and most software do.
    Teletex,
}

impl StringType {
    /// The ASN.1 name.
    pub fn name(self) -> &'static str {
        match self {
            StringType::Utf8 => "UTF8String",
            StringType::Printable => "PrintableString",
            StringType::Ia5 => "IA5String",
            StringType::Visible => "VisibleString",
            StringType::Bmp => "BMPString",
            StringType::Teletex => "TeletexString",
        }
    }

    /// Every supported type.
    pub const ALL: [StringType; 6] = [
        StringType::Utf8,
        StringType::Printable,
        StringType::Ia5,
        StringType::Visible,
        StringType::Bmp,
        StringType::Teletex,
    ];

    /// The string types the node profiles accept (what kubelets and Go's `x509` encoder write).
    pub const NODE_PROFILE: [StringType; 2] = [StringType::Utf8, StringType::Printable];
}

/// One attribute value, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// A string in one of the supported types.
    Text {
        /// Its ASN.1 type.
        string_type: StringType,
        /// The decoded characters.
        value: String,
    },
    /// Any other ASN.1 type, or bytes that are not valid for their string type: never read as a
    /// string.
    Unsupported {
        /// The tag found.
        tag: String,
    },
}

impl AttrValue {
    /// The decoded text, when the value is a supported string.
    pub fn text(&self) -> Option<&str> {
        match self {
            AttrValue::Text { value, .. } => Some(value),
            AttrValue::Unsupported { .. } => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            AttrValue::Text { string_type, value } => {
                let shown: String = value.chars().take(300).collect();
                format!("{shown:?} ({})", string_type.name())
            }
            AttrValue::Unsupported { tag } => format!("a value of type {tag}"),
        }
    }
}

/// One subject attribute: its OID and decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectAttr {
    /// The attribute type.
    pub oid: ObjectIdentifier,
    /// The value.
    pub value: AttrValue,
}

/// The requested subject: the exact `Name` (copied into the certificate as requested) and its
/// attributes decoded from that same value, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    name: Name,
    attrs: Vec<SubjectAttr>,
    multi_valued_rdn: bool,
}

impl Subject {
    /// Decodes every attribute of `name`.
    pub fn decode(name: Name) -> Subject {
        let attrs = name
            .iter()
            .map(|atv| SubjectAttr {
                oid: atv.oid,
                value: decode_value(&atv.value),
            })
            .collect();
        let multi_valued_rdn = name.iter_rdn().any(|rdn| rdn.len() != 1);
        Subject {
            name,
            attrs,
            multi_valued_rdn,
        }
    }

    /// The subject exactly as requested (what the certificate carries).
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The decoded attributes, in order.
    pub fn attrs(&self) -> &[SubjectAttr] {
        &self.attrs
    }

    /// The decoded values of every attribute `oid`, in order.
    pub fn values(&self, oid: ObjectIdentifier) -> impl Iterator<Item = &AttrValue> {
        self.attrs
            .iter()
            .filter(move |a| a.oid == oid)
            .map(|a| &a.value)
    }

    /// The CN when there is exactly one and it is a supported string: the one CN every
    /// consumer (authorization, the store's index, the profiles) reads.
    pub fn common_name(&self) -> Option<&str> {
        let mut cns = self.values(oids::COMMON_NAME);
        match (cns.next(), cns.next()) {
            (Some(v), None) => v.text(),
            _ => None,
        }
    }

    /// RFC 4514 text, for logs and the audit record.
    pub fn describe(&self) -> String {
        super::rfc4514::rfc4514(&self.name)
    }
}

/// Decodes one attribute value by its tag.
pub fn decode_value(value: &Any) -> AttrValue {
    let bytes = value.value();
    let tag = value.tag();
    let text = match tag {
        Tag::Utf8String => std::str::from_utf8(bytes)
            .ok()
            .map(|s| (StringType::Utf8, s.to_owned())),
        Tag::PrintableString => PrintableStringRef::new(bytes)
            .ok()
            .map(|s| (StringType::Printable, s.as_str().to_owned())),
        Tag::Ia5String => Ia5StringRef::new(bytes)
            .ok()
            .map(|s| (StringType::Ia5, s.as_str().to_owned())),
        Tag::VisibleString => bytes.iter().all(|b| (0x20..=0x7e).contains(b)).then(|| {
            (
                StringType::Visible,
                bytes.iter().map(|b| char::from(*b)).collect(),
            )
        }),
        Tag::BmpString => BmpString::from_ucs2(bytes)
            .ok()
            .map(|s| (StringType::Bmp, s.chars().collect())),
        Tag::TeletexString => Some((
            StringType::Teletex,
            bytes.iter().map(|b| char::from(*b)).collect(),
        )),
        _ => None,
    };
    match text {
        Some((string_type, value)) => AttrValue::Text { string_type, value },
        None => AttrValue::Unsupported {
            tag: tag.to_string(),
        },
    }
}

/// Every RDN holds exactly one attribute (no multi-valued RDNs).
pub fn single_valued_rdns(subject: &Subject) -> Result<(), SignerValidationFailure> {
    if subject.multi_valued_rdn {
        return Err(SignerValidationFailure::new(
            Rule::SubjectAttributes,
            "a multi-valued RDN",
            "one attribute per RDN",
        ));
    }
    Ok(())
}

/// Every attribute value is a string of one of `allowed` types.
pub fn string_types(
    subject: &Subject,
    allowed: &[StringType],
) -> Result<(), SignerValidationFailure> {
    let bad = subject.attrs.iter().find(|a| match &a.value {
        AttrValue::Text { string_type, .. } => !allowed.contains(string_type),
        AttrValue::Unsupported { .. } => true,
    });
    match bad {
        None => Ok(()),
        Some(a) => Err(SignerValidationFailure::new(
            Rule::SubjectStringType,
            format!("attribute {} as {}", a.oid, a.value.describe()),
            allowed
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(" or "),
        )),
    }
}

/// Exactly one CN, a supported string, not empty; returns it.
pub fn one_common_name(subject: &Subject) -> Result<String, SignerValidationFailure> {
    match subject.common_name() {
        Some(cn) if !cn.is_empty() => Ok(cn.to_owned()),
        _ => Err(SignerValidationFailure::new(
            Rule::SubjectCommonName,
            format!(
                "common names [{}]",
                subject
                    .values(oids::COMMON_NAME)
                    .map(AttrValue::describe)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "exactly one non-empty CN",
        )),
    }
}

/// The node subject of the kubelet signers (stricter than upstream, reference §8): exactly
/// `CN=system:node:<DNS-1123 name>` and `O=system:nodes`, no other attribute, each value a
/// UTF8String or PrintableString.
pub fn node_subject(subject: &Subject) -> Result<NodeName, SignerValidationFailure> {
    single_valued_rdns(subject)?;
    string_types(subject, &StringType::NODE_PROFILE)?;
    if let Some(other) = subject
        .attrs
        .iter()
        .find(|a| a.oid != oids::COMMON_NAME && a.oid != oids::ORGANIZATION)
    {
        return Err(SignerValidationFailure::new(
            Rule::SubjectAttributes,
            format!("attribute {}", other.oid),
            "CN and O only",
        ));
    }
    let orgs: Vec<&AttrValue> = subject.values(oids::ORGANIZATION).collect();
    if orgs.iter().map(|v| v.text()).ne([Some(NODES_GROUP)]) {
        return Err(SignerValidationFailure::new(
            Rule::SubjectOrganization,
            format!(
                "organizations [{}]",
                orgs.iter()
                    .map(|v| v.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("exactly one O, {NODES_GROUP:?}"),
        ));
    }
    let cn = one_common_name(subject)?;
    NodeName::from_common_name(&cn).ok_or_else(|| {
        SignerValidationFailure::new(
            Rule::SubjectCommonName,
            cn.chars().take(300).collect::<String>(),
            "system:node:<DNS-1123 node name>",
        )
    })
}

#[cfg(test)]
mod tests;

//! Subject rules shared by the signer profiles.

use der::asn1::Any;
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::name::Name;

use super::error::{Rule, SignerValidationFailure};
use super::names::{NODES_GROUP, NodeName};
use super::oids;

/// Reads a subject attribute value as a string (PrintableString, UTF8String, ...).
pub fn attr_string(value: &Any) -> Option<String> {
    value
        .decode_as::<DirectoryString>()
        .ok()
        .map(|d| d.value().into_owned())
}

/// The values of every attribute `oid` in the subject, in order.
pub fn values_of(subject: &Name, oid: der::oid::ObjectIdentifier) -> Vec<String> {
    subject
        .iter()
        .filter(|atv| atv.oid == oid)
        .map(|atv| attr_string(&atv.value).unwrap_or_default())
        .collect()
}

/// Every RDN holds exactly one attribute (no multi-valued RDNs).
pub fn single_valued_rdns(subject: &Name) -> Result<(), SignerValidationFailure> {
    if subject.iter_rdn().any(|rdn| rdn.len() != 1) {
        return Err(SignerValidationFailure::new(
            Rule::SubjectAttributes,
            "a multi-valued RDN",
            "one attribute per RDN",
        ));
    }
    Ok(())
}

/// Exactly one CN; returns it.
pub fn one_common_name(subject: &Name) -> Result<String, SignerValidationFailure> {
    let cns = values_of(subject, oids::COMMON_NAME);
    match cns.as_slice() {
        [cn] if !cn.is_empty() => Ok(cn.clone()),
        _ => Err(SignerValidationFailure::new(
            Rule::SubjectCommonName,
            format!("{} common names {:?}", cns.len(), cns),
            "exactly one non-empty CN",
        )),
    }
}

/// The node subject of the kubelet signers (stricter than upstream, reference §8): exactly
/// `CN=system:node:<DNS-1123 name>` and `O=system:nodes`, no other attribute.
pub fn node_subject(subject: &Name) -> Result<NodeName, SignerValidationFailure> {
    single_valued_rdns(subject)?;
    if let Some(other) = subject
        .iter()
        .find(|atv| atv.oid != oids::COMMON_NAME && atv.oid != oids::ORGANIZATION)
    {
        return Err(SignerValidationFailure::new(
            Rule::SubjectAttributes,
            format!("attribute {}", other.oid),
            "CN and O only",
        ));
    }
    let orgs = values_of(subject, oids::ORGANIZATION);
    if orgs.as_slice() != [NODES_GROUP] {
        return Err(SignerValidationFailure::new(
            Rule::SubjectOrganization,
            format!("{orgs:?}"),
            format!("[\"{NODES_GROUP}\"]"),
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

//! The post-build check: the finished certificate, parsed back from DER, must say exactly what
//! the profile decided. (No second signature check: the signer verified the signature.)

use der::Decode;
use x509_cert::certificate::{Certificate, Version};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
};
use x509_cert::serial_number::SerialNumber;

use super::error::IssueError;
use super::ext::find;
use super::leaf::LeafContents;
use super::oids;
use super::validity::Window;

fn mismatch(what: &'static str) -> IssueError {
    IssueError::ProfileMismatch { what }
}

fn ensure(ok: bool, what: &'static str) -> Result<(), IssueError> {
    if ok { Ok(()) } else { Err(mismatch(what)) }
}

/// Compares a parsed certificate with the decided contents.
pub fn compare_with_profile(
    cert: &Certificate,
    want: &LeafContents,
    serial: &SerialNumber,
    win: Window,
    spki: &spki::SubjectPublicKeyInfoOwned,
) -> Result<(), IssueError> {
    let tbs = cert.tbs_certificate();
    ensure(tbs.version() == Version::V3, "version")?;
    ensure(tbs.serial_number() == serial, "serial")?;
    ensure(tbs.issuer() == &want.issuer, "issuer")?;
    ensure(tbs.subject() == &want.subject, "subject")?;
    ensure(tbs.subject_public_key_info() == spki, "public key")?;
    ensure(
        tbs.validity().not_before.to_system_time() == win.not_before,
        "notBefore",
    )?;
    ensure(
        tbs.validity().not_after.to_system_time() == win.not_after,
        "notAfter",
    )?;
    let exts = tbs.extensions().ok_or_else(|| mismatch("extensions"))?;
    let expected = 5 + usize::from(!want.sans.is_empty());
    ensure(exts.len() == expected, "extension count")?;

    let bc = find(cert, oids::BASIC_CONSTRAINTS).ok_or_else(|| mismatch("basicConstraints"))?;
    let bc_val = BasicConstraints::from_der(bc.extn_value.as_bytes())
        .map_err(|_| mismatch("basicConstraints"))?;
    ensure(bc.critical && !bc_val.ca, "basicConstraints")?;

    let ku = tbs
        .get_extension::<KeyUsage>()
        .map_err(|_| mismatch("keyUsage"))?
        .ok_or_else(|| mismatch("keyUsage"))?;
    ensure(ku.0 && ku.1 == want.key_usage, "keyUsage")?;

    let eku = tbs
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|_| mismatch("extKeyUsage"))?
        .ok_or_else(|| mismatch("extKeyUsage"))?;
    ensure(!eku.0 && eku.1.0 == vec![want.eku], "extKeyUsage")?;

    let aki = tbs
        .get_extension::<AuthorityKeyIdentifier>()
        .map_err(|_| mismatch("authorityKeyIdentifier"))?
        .ok_or_else(|| mismatch("authorityKeyIdentifier"))?;
    ensure(
        aki.1.key_identifier.as_ref().map(|k| k.as_bytes())
            == Some(want.authority_key_id.as_slice()),
        "authorityKeyIdentifier",
    )?;

    let san = tbs
        .get_extension::<SubjectAltName>()
        .map_err(|_| mismatch("subjectAltName"))?;
    let want_san = want
        .san_extension()
        .map_err(|_| mismatch("subjectAltName"))?;
    ensure(san.map(|(_, s)| s) == want_san, "subjectAltName")?;
    Ok(())
}

use super::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};

fn csr(uid: &str, conditions: &[(&str, &str)], cert: &str) -> CertificateSigningRequest {
    let mut c = CertificateSigningRequest::default();
    c.metadata.name = Some("node-csr-x".into());
    c.metadata.uid = Some(uid.into());
    c.status = Some(CertificateSigningRequestStatus {
        conditions: Some(
            conditions
                .iter()
                .map(|(t, r)| CertificateSigningRequestCondition {
                    type_: (*t).into(),
                    status: "True".into(),
                    reason: Some((*r).into()),
                    message: Some("by policy".into()),
                    ..Default::default()
                })
                .collect(),
        ),
        certificate: (!cert.is_empty()).then(|| ByteString(cert.as_bytes().to_vec())),
    });
    c
}

fn name() -> CsrName {
    CsrName::parse("node-csr-x").unwrap()
}

#[test]
fn pending_until_approved_and_issued() {
    let mut uid = None;
    assert!(matches!(
        inspect(&csr("u1", &[], ""), &name(), &mut uid),
        Ok(Seen::Pending)
    ));
    assert_eq!(uid.as_deref(), Some("u1"));
    let approved = csr("u1", &[("Approved", "AutoApproved")], "");
    assert!(matches!(
        inspect(&approved, &name(), &mut uid),
        Ok(Seen::Pending)
    ));
    let issued = csr("u1", &[("Approved", "AutoApproved")], "PEM");
    match inspect(&issued, &name(), &mut uid) {
        Ok(Seen::Issued(c)) => assert_eq!(c, "PEM"),
        _ => panic!("expected the certificate"),
    }
}

#[test]
fn denied_failed_and_uid_change_end_the_wait() {
    let mut uid = Some("u1".to_string());
    match inspect(
        &csr("u1", &[("Denied", "NotMyNode")], ""),
        &name(),
        &mut uid,
    ) {
        Err(WaitError::Denied {
            reason, message, ..
        }) => {
            assert_eq!(reason, "NotMyNode");
            assert_eq!(message, "by policy");
        }
        _ => panic!("expected Denied"),
    }
    // Failed wins over Approved, even with a certificate present.
    let failed = csr(
        "u1",
        &[
            ("Approved", "AutoApproved"),
            ("Failed", "SignerValidationFailure"),
        ],
        "PEM",
    );
    assert!(matches!(
        inspect(&failed, &name(), &mut uid),
        Err(WaitError::Failed { .. })
    ));
    assert!(matches!(
        inspect(&csr("u2", &[], ""), &name(), &mut uid),
        Err(WaitError::UidChanged { .. })
    ));
    let msg = WaitError::Denied {
        name: "node-csr-x".into(),
        reason: "R".into(),
        message: "M".into(),
    }
    .to_string();
    assert_eq!(
        msg,
        "certificate signing request node-csr-x was denied: R: M"
    );
}

#[test]
fn random_in_stays_in_range() {
    for _ in 0..1000 {
        let v = random_in(300..600);
        assert!((300..600).contains(&v));
    }
    assert_eq!(random_in(5..5), 5);
}

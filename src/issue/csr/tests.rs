use super::*;
use crate::issue::error::InvalidRequest;

fn invalid(r: Result<ParsedCsr, CsrRejection>) -> RequestError {
    match r {
        Err(CsrRejection::Invalid(InvalidRequest::Request(e))) => e,
        other => panic!("expected an invalid request, got {other:?}"),
    }
}

#[test]
fn bounds_and_framing() {
    let big = vec![b'A'; MAX_CSR_PEM_BYTES + 1];
    assert!(matches!(
        invalid(parse_csr(&big)),
        RequestError::TooLarge { .. }
    ));
    assert_eq!(invalid(parse_csr(b"")), RequestError::NotPem);
    let cert = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    assert_eq!(invalid(parse_csr(cert)), RequestError::NotPem);
    let junk = b"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n";
    assert!(matches!(invalid(parse_csr(junk)), RequestError::Der(_)));
}

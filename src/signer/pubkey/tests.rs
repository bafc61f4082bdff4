//! Unit tests for `pubkey.rs`.

use super::*;

#[test]
fn ecdsa_der_pads_high_bit_and_strips_leading_zeros() {
    let mut raw = vec![0u8; 64];
    raw[0] = 0x80; // r: high bit set → 0x00 prefix, 33 bytes
    raw[33] = 0x01; // s: leading zero byte stripped, 31 bytes
    let der = ecdsa_der(&raw, 32).unwrap();
    assert_eq!(der[0], 0x30);
    assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
    assert_eq!(der[5], 0x80);
    assert_eq!(&der[2 + 2 + 33..2 + 2 + 33 + 3], &[0x02, 31, 0x01]);
    assert!(ecdsa_der(&raw[..63], 32).is_err());
}

#[test]
fn signature_algorithms() {
    assert_eq!(
        Algorithm::EcdsaP384.signature_algorithm().oid,
        rfc5912::ECDSA_WITH_SHA_384
    );
    assert!(
        Algorithm::EcdsaP256
            .signature_algorithm()
            .parameters
            .is_none()
    );
    assert!(
        Algorithm::Rsa3072
            .signature_algorithm()
            .parameters
            .is_some()
    );
}

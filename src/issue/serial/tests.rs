//! Unit tests for `serial.rs`.

use super::*;

#[test]
fn serials_are_positive_distinct_and_short() {
    let a = random_serial().unwrap();
    let b = random_serial().unwrap();
    assert_ne!(a, b);
    let der = der::Encode::to_der(&a).unwrap();
    // INTEGER tag, length ≤ 17 (16 bytes + a possible leading zero), positive.
    assert_eq!(der[0], 0x02);
    assert!(der[1] <= 17);
    assert!(der[2] & 0x80 == 0);
}

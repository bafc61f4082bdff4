//! Random certificate serial numbers.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use x509_cert::serial_number::SerialNumber;

/// Serial entropy: 128 bits (reference §2.3: uniform in [0, 2^128); CA/B BR ≥ 64 bits).
pub const SERIAL_BYTES: usize = 16;

/// Errors making a serial.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The system random source failed.
    #[error("random number generator failure")]
    Random,
    /// Encoding failed.
    #[error("serial encoding failed")]
    Encode,
}

/// A random positive non-zero 128-bit serial (≤ 17 DER content octets, within RFC 5280's 20).
pub fn random_serial() -> Result<SerialNumber, SerialError> {
    let rng = SystemRandom::new();
    // An all-zero draw (probability 2^-128) is retried a bounded number of times.
    for _ in 0..4 {
        let mut bytes = [0u8; SERIAL_BYTES];
        rng.fill(&mut bytes).map_err(|_| SerialError::Random)?;
        if bytes.iter().any(|b| *b != 0) {
            return SerialNumber::new(&bytes).map_err(|_| SerialError::Encode);
        }
    }
    Err(SerialError::Random)
}

#[cfg(test)]
mod tests;

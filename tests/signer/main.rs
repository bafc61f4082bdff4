//! The signer over PKCS#11 (SoftHSM and a TPM token): CLI, the token matrix, the session pool,
//! recovery, signing and URIs. One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod matrix;
mod pool;
mod recovery;
mod sign;
mod tpm_e2e;
mod uri;

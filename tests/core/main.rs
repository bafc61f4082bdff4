//! The core and issuance tier: the example config, the core agreement properties (with their
//! committed proptest regressions beside `agreement.rs`), the core end to end, the fuzz seed
//! corpus, and the issuer (CA, properties, table). One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod agreement;
mod config_example;
mod e2e;
mod fuzz_seed_corpus;
mod issue_ca;
mod issue_proptest;
mod issue_table;

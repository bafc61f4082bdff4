//! The shared test harness, mounted once by every integration-test binary (`tests/<area>/main.rs`
//! has `#[path = "../support/mod.rs"] mod support;`). Each binary uses only part of it, so dead
//! code is allowed here.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api_support;
pub mod appliance;
pub mod auth;
pub mod controller;
pub mod delay_line;
pub mod faults;
pub mod issue_csr;
pub mod issue_soft_key;
pub mod issue_tools;
pub mod node;
pub mod ops;
pub mod regressions;
pub mod relay;
pub mod signer_support;
pub mod table;
pub mod tokens;
pub mod tools;

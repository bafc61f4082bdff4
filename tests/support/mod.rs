//! The shared test harness, mounted once by every integration-test binary (`tests/<area>/main.rs`
//! has `#[path = "../support/mod.rs"] mod support;`). Each binary uses only part of it, so dead
//! code is allowed here.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod auth;
pub mod table;

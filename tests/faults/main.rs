//! Fault injection: crash, full disk, the edge, the HSM, overload and shutdown. One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod crash;
mod disk;
mod edge;
mod hsm;
mod overload;
mod shutdown;

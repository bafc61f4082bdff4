//! The node agent: bootstrap, the dev end to end, fall-back, faults, inventory reload, serving
//! certificate rotation, signals and trust on first use. One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod bootstrap;
mod dev_e2e;
mod fallback;
mod faults;
mod inventory_reload;
mod rotation_serving;
mod signals;
mod tofu;

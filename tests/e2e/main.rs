//! End to end as a user would: the real `kubectl`, kube-rs, the Python client, and the seeds. One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod kube_rs;
mod kubectl;
mod python;
mod seeds;

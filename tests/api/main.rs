//! The HTTP API in process against the router and over real HTTPS: create once, the CSR flow,
//! hostile input, the HSM behind it, protobuf, restart and watch-list. One test binary;
//! nextest still runs each test in its own process (PKCS#11 state is per process).

#[path = "../support/mod.rs"]
mod support;

mod create_once;
mod flow;
mod hostile;
mod hsm;
mod https;
mod node_cli;
mod protobuf_k8s_pb;
mod protobuf_response;
mod restart;
mod watchlist;

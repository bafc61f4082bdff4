//! The auth layer: authorization matrix, client certificates, parser properties, TLS handshakes
//! and the `kubesigner token` commands. One test binary; nextest still runs each test in its own
//! process.

#[path = "../support/mod.rs"]
mod support;

mod authz_matrix;
mod client_cert;
mod parsers_prop;
mod tls;
mod token_cli;

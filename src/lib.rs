//! kubesigner: a hardened signing appliance for Kubernetes node certificates.
//!
//! The CA private key lives in a PKCS#11 token and never leaves it. Modules follow the request
//! path: `tls → authn → authz → api → policy → issue → signer → store`.

pub mod api;
pub mod app;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod conditions;
pub mod config;
pub mod controller;
pub mod core;
pub mod exit;
pub mod issue;
pub mod kubeconfig;
pub mod metrics;
pub mod no_dump;
pub mod node_client;
pub mod policy;
pub mod reload;
pub mod signer;
pub mod store;
pub mod tls;

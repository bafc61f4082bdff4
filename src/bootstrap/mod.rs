//! The node side of TLS bootstrapping: what a kubelet does with `--bootstrap-kubeconfig`,
//! `--kubeconfig` and `--cert-dir` (reference §4): make a key and a CSR, create it with the
//! bootstrap token, wait for the certificate, store it in the cert dir, write the node
//! kubeconfig, then renew with the node's own certificate and keep a serving certificate.

pub mod certdir;
pub mod client;
pub mod csr;
pub mod key;
pub mod name;
pub mod node;
pub mod request;
pub mod rotation;
pub mod run;
pub mod wait;

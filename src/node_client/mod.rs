//! The node side of TLS bootstrapping: what a kubelet does with `--bootstrap-kubeconfig`,
//! `--kubeconfig` and `--cert-dir` (reference §4): make a key and a CSR, create it with the
//! bootstrap token, wait for the certificate, store it in the cert dir, write the node
//! kubeconfig, then renew with the node's own certificate and keep a serving certificate.
//!
//! Along the path of one request:
//! - [`node`]: the node name (`--node-name` or the lower-cased host name);
//! - [`key`], [`csr`]: the ECDSA P-256 key, the PKCS#10 request, the `node-csr-<digest>` name;
//! - [`client`]: HTTPS to the signer (create, get, list, watch, `/healthz`);
//! - [`request`]: create or reuse (409 → `ensureCompatible`), then [`wait`] (list + watch);
//! - [`certdir`]: timestamped pairs and the `*-current.pem` symlink, written atomically;
//! - [`rotation`], [`run`]: the command's flow, renewal schedule and retries.
//!
//! [`run::run`] with a [`run::BootstrapConfig`] is the entry point `kubesigner bootstrap` uses.

pub mod certdir;
pub mod client;
pub mod csr;
pub mod key;
pub mod name;
pub mod node;
mod node_side;
pub mod request;
pub mod rotation;
pub mod run;
pub mod usable;
pub mod wait;
mod watch_stream;

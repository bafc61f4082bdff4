//! The client's network address, carried from the accepted connection to the handlers as a
//! request extension, and the one use of it: trust on first use (`[issuance]
//! record_first_bootstrap_address`), which records the peer IP of the connection that creates
//! a node's first bootstrap client CSR as that node's address for serving-certificate approval.

use std::net::IpAddr;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::Api;
use super::hooks::Caller;
use crate::store::CsrIndex;

/// The IP address of the TCP peer of the connection a request arrived on (set by the server's
/// accept loop; absent for in-process callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub IpAddr);

impl Api {
    /// For a new CSR about to be stored (on the create path's blocking thread): records `peer`
    /// as its node's first bootstrap address when the issuance layer asks for it (a valid
    /// bootstrap client CSR for a node) and the store does not know the node yet. Failures are
    /// logged only: without a record the node's serving CSRs simply wait for the inventory or
    /// an admin.
    pub(super) fn record_first_address(
        &self,
        csr: &CertificateSigningRequest,
        caller: &Caller,
        index: &CsrIndex,
        peer: Option<PeerAddr>,
    ) {
        let (Some(PeerAddr(ip)), Some(node)) = (peer, index.node_name.as_deref()) else {
            return;
        };
        if !self.inner.issuance.records_first_address(csr, caller) {
            return;
        }
        match self.inner.store.record_first_bootstrap_address(node, ip) {
            Ok(true) => {
                tracing::info!(%node, address = %ip, "first bootstrap address recorded (trust on first use)");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(%node, error = %e, "cannot record the first bootstrap address")
            }
        }
    }
}

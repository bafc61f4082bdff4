//! The client's network address, carried from the accepted connection to the handlers as a
//! request extension, and the one use of it: trust on first use (`[issuance]
//! record_first_bootstrap_address`), which records the peer IP of the connection that creates
//! a node's first bootstrap client CSR as that node's address for serving-certificate approval.

use std::net::IpAddr;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::hooks::Caller;
use super::{Api, blocking};
use crate::store::CsrIndex;

/// The IP address of the TCP peer of the connection a request arrived on (set by the server's
/// accept loop; absent for in-process callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub IpAddr);

impl Api {
    /// After a valid CSR was stored: records `peer` as its node's first bootstrap address when
    /// the issuance layer asks for it and the store does not know the node yet. Failures are
    /// logged only: the CSR was created, and without a record its serving CSRs simply wait for
    /// the inventory or an admin.
    pub(super) async fn record_first_address(
        &self,
        stored: &CertificateSigningRequest,
        caller: &Caller,
        index: &CsrIndex,
        peer: Option<PeerAddr>,
    ) {
        let (Some(PeerAddr(ip)), Some(node)) = (peer, index.node_name.clone()) else {
            return;
        };
        let issuance = self.inner.issuance.clone();
        let (probe, who) = (stored.clone(), caller.clone());
        let wanted = blocking(move || issuance.records_first_address(&probe, &who)).await;
        if !matches!(wanted, Ok(true)) {
            return;
        }
        let store = self.inner.store.clone();
        let n = node.clone();
        match blocking(move || store.record_first_bootstrap_address(&n, ip)).await {
            Ok(Ok(true)) => {
                tracing::info!(%node, address = %ip, "first bootstrap address recorded (trust on first use)");
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(%node, error = %e, "cannot record the first bootstrap address")
            }
            Err(e) => {
                tracing::warn!(%node, error = %e, "cannot record the first bootstrap address")
            }
        }
    }
}

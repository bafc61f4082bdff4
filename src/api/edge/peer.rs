//! The client's network address, carried from the accepted connection to the handlers as a
//! request extension. Its one use: trust on first use (`[issuance]
//! record_first_bootstrap_address`), where the create path records the peer IP of the
//! connection that created a node's first *approved* bootstrap client CSR as that node's
//! address for serving-certificate approval (`create_flow`, in the CSR's own transaction).

use std::net::IpAddr;

/// The IP address of the TCP peer of the connection a request arrived on (set by the server's
/// accept loop; absent for in-process callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub IpAddr);

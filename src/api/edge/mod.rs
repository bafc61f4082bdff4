//! The HTTP edge: everything between the socket and [`crate::api::Api::handle`].
//!
//! - [`server`]: the HTTPS listener (accept loop, TLS, HTTP/1.1 + h2, graceful shutdown);
//!   `app::serve` binds it;
//! - [`conn`]: one connection with deadlines (handshake, headers, idle) and per-address caps;
//! - [`peer`]: the client's address, handed to the handlers as a request extension;
//! - [`admission`]: fair shares of the request and watch slots;
//! - [`serving`] and [`serving_renew`]: the appliance's own serving certificate when the
//!   operator gives none, and its renewal without a restart.
//!
//! Response bodies and bounded body reads are in [`crate::api::body`], errors become HTTP in
//! [`crate::api::error`]: every handler uses them.

pub mod admission;
pub mod conn;
pub mod peer;
pub mod server;
pub mod serving;
pub mod serving_renew;

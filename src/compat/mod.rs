//! Real-client compatibility building blocks (issue 6): pure, self-contained pieces that the
//! API layer calls. Each module's documentation says exactly where the API calls it.
//!
//! - [`protobuf`]: decode/encode `application/vnd.kubernetes.protobuf` CSR bodies.

pub mod protobuf;

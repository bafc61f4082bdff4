//! Real-client compatibility building blocks (issue 6): pure, self-contained pieces that the
//! API layer calls. Each module's documentation says exactly where the API calls it.
//!
//! - [`protobuf`]: decode/encode `application/vnd.kubernetes.protobuf` CSR bodies.
//! - [`protobuf_stream`]: protobuf CSR lists, `Status` bodies and watch frames.
//! - [`signer_names`]: the `Failed` condition for signer names the appliance does not serve.
//! - [`gc`]: whether a CSR may be garbage-collected now (`[gc]` config).
//! - [`limits`]: per-node pending cap and create-rate limits (`[limits]` config).
//! - [`media`]: which body decoder and response encoding (JSON or protobuf) to use.
//! - [`patch`]: apply merge, strategic-merge and JSON patches to a CSR document.

pub mod gc;
pub mod limits;
pub mod media;
pub mod patch;
pub mod protobuf;
pub mod protobuf_stream;
pub mod signer_names;

/// `humantime` durations ("90s", "24h") for the config sections defined here.
mod duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

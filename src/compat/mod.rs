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
//!
//! # Where the API calls what
//! | request | call |
//! |---|---|
//! | every request with a body | [`media::BodyFormat::from_content_type`] (415 on `None`) |
//! | every response | [`media::ResponseFormat::negotiate`] (406 on `None`) |
//! | create / PUT / `/approval` / `/status` with a protobuf body | [`protobuf::decode_csr`] (400 on `Err`) |
//! | create, before storing | [`limits::Limiter::check_create`] (429 + `Retry-After`), then, for a signer name without a profile (serve mode only), [`signer_names::mark_unknown_signer`] |
//! | PATCH on the CSR, `/approval`, `/status` | [`patch::PatchKind::from_content_type`] (415), [`patch::apply`], then the PUT rules of that endpoint |
//! | protobuf-only responses | [`protobuf::encode_csr`], [`protobuf_stream::encode_csr_list`], [`protobuf_stream::encode_status`] |
//! | protobuf-only watch | [`protobuf_stream::encode_watch_frame`] per event |
//! | GC task, every [`gc::GcConfig::interval`] | [`gc::collect`] per stored CSR; delete + audit on `Some` |

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

//! `humantime` durations ("90s", "24h", "500ms") in serde: `#[serde(with = "duration")]` on every
//! duration key of every section.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a `humantime` duration string.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

//! A watch answer read as newline-delimited JSON events, bounded in size and in silence.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent;

use super::client::{ClientError, MAX_RESPONSE_BYTES};

/// A watch response read as newline-delimited JSON events.
pub struct WatchStream {
    body: Incoming,
    buf: Vec<u8>,
    idle: Duration,
    path: String,
}

impl WatchStream {
    /// A stream over a watch answer's body; `idle` is the longest silence accepted.
    pub(super) fn new(body: Incoming, idle: Duration, path: String) -> Self {
        Self {
            body,
            buf: Vec::new(),
            idle,
            path,
        }
    }

    /// The next event; `Ok(None)` when the server closed the stream.
    pub async fn next_event(
        &mut self,
    ) -> Result<Option<WatchEvent<CertificateSigningRequest>>, ClientError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line).map(Some).map_err(|source| {
                    ClientError::Decode {
                        path: self.path.clone(),
                        source,
                    }
                });
            }
            if self.buf.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::Body {
                    path: self.path.clone(),
                });
            }
            let frame = match tokio::time::timeout(self.idle, self.body.frame()).await {
                Err(_) => {
                    return Err(ClientError::Timeout {
                        path: self.path.clone(),
                    });
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(_))) => {
                    return Err(ClientError::Body {
                        path: self.path.clone(),
                    });
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

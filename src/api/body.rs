//! Response bodies (whole or streamed) and bounded request-body reading.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};

use super::error::ApiError;

/// A request body as the handlers take it: bytes, `Send`, with an error that can be boxed
/// (hyper's `Incoming` in the server, `Full` in in-process tests).
pub trait RequestBody:
    Body<Data = Bytes, Error: std::error::Error + Send + Sync + 'static> + Send
{
}

impl<B> RequestBody for B where
    B: Body<Data = Bytes, Error: std::error::Error + Send + Sync + 'static> + Send
{
}

/// The body type of every response: a whole buffer or a stream (watch).
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// A whole-buffer body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed()
}

/// Reads a request body of at most `limit` bytes (413 beyond it) within `timeout` (400 after).
pub async fn read_limited<B: RequestBody>(
    body: B,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    // A declared length (Content-Length, or HTTP/2's) over the limit is refused before any byte
    // is read, so the client gets the 413 at once instead of after `limit` bytes.
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(ApiError::TooLarge { limit });
    }
    let Ok(read) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        return Err(super::error::bad_request(format!(
            "request body not received within {timeout:?}"
        )));
    };
    match read {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge { limit }),
        Err(e) => Err(super::error::bad_request(format!(
            "cannot read request body: {e}"
        ))),
    }
}

//! Response bodies (whole or streamed) and bounded request-body reading.

use std::convert::Infallible;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};

use super::error::ApiError;

/// The body type of every response: a whole buffer or a stream (watch).
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// A whole-buffer body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed()
}

/// Reads a request body of at most `limit` bytes (413 beyond it).
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge { limit }),
        Err(e) => Err(super::error::bad_request(format!(
            "cannot read request body: {e}"
        ))),
    }
}

//! `Authorization: Bearer <token>` parsing (reference §5.1, upstream `request/bearertoken`).

/// Longest `Authorization` header value accepted (a bound on untrusted input; long enough for
/// any static token of [`super::static_tokens::MAX_TOKEN_LEN`] bytes).
pub const MAX_AUTHORIZATION_LEN: usize = 8192;

/// Returns the token of a `Bearer` header: trimmed, split on whitespace, scheme `bearer`
/// (any case), exactly one non-empty printable-ASCII token. `None` for anything else.
pub(crate) fn parse_bearer(header: &[u8]) -> Option<&str> {
    if header.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let text = std::str::from_utf8(header).ok()?;
    let mut parts = text.split_ascii_whitespace();
    let scheme = parts.next()?;
    let token = parts.next()?;
    if parts.next().is_some() || !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    token.bytes().all(|b| b.is_ascii_graphic()).then_some(token)
}

#[cfg(test)]
mod tests;

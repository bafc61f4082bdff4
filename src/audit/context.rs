//! Who is making the current change, for the audit records: the API sets it per request
//! ([`scope`] around the request's future); `api::blocking` carries it onto the blocking
//! thread that runs the store call ([`capture`] / [`enter`]); [`super::append()`] reads it.

use std::cell::RefCell;

/// Longest accepted `X-Request-Id` (longer or odd ones are replaced by a generated id).
pub const MAX_REQUEST_ID: usize = 64;

/// The request behind a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// The request id (also in the log span and the response's `X-Request-Id`).
    pub request_id: String,
    /// The authenticated user (empty when anonymous).
    pub user: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

tokio::task_local! {
    static TASK: AuditContext;
}

thread_local! {
    static THREAD: RefCell<Option<AuditContext>> = const { RefCell::new(None) };
}

/// Runs `fut` with `ctx` as the current context.
pub async fn scope<F: std::future::Future>(ctx: AuditContext, fut: F) -> F::Output {
    TASK.scope(ctx, fut).await
}

/// The context of the current task, to carry to a blocking thread.
pub fn capture() -> Option<AuditContext> {
    TASK.try_with(Clone::clone).ok()
}

/// Makes `ctx` current on this (blocking) thread while `f` runs.
pub fn enter<T>(ctx: Option<AuditContext>, f: impl FnOnce() -> T) -> T {
    let previous = THREAD.with(|t| t.replace(ctx));
    let out = f();
    THREAD.with(|t| t.replace(previous));
    out
}

/// The current context: the blocking thread's, else the task's.
pub fn current() -> Option<AuditContext> {
    THREAD.with(|t| t.borrow().clone()).or_else(capture)
}

/// The request id to use: the client's `X-Request-Id` when it is 1 to [`MAX_REQUEST_ID`]
/// characters of `[A-Za-z0-9-]`, else a fresh random one (128 bits, hex).
pub fn request_id(given: Option<&[u8]>) -> String {
    if let Some(g) = given
        && !g.is_empty()
        && g.len() <= MAX_REQUEST_ID
        && g.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return String::from_utf8_lossy(g).into_owned();
    }
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // No randomness: a counter still tells requests apart in the log.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return format!("req-{n}");
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests;

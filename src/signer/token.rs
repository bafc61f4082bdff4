//! [`TokenSigner`]: the pool-backed PKCS#11 signer with error classification, fail-fast while
//! down, and a background thread that keeps the token alive and re-initialises it after a
//! device error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, Weak, mpsc};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::config::signer as config;
use crate::signer::ckr::ErrorClass;
use crate::signer::key::{SignKey, SignerError};
use crate::signer::module;
use crate::signer::pin::{DEFAULT_CREDENTIAL, Pin};
use crate::signer::pool::Live;
use crate::signer::pubkey::{Algorithm, PublicKey};
use crate::signer::uri::Pkcs11Uri;

/// Tuning knobs for [`TokenSigner::open`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pool size when the URI has no `max-sessions`. This bounds the signing sessions; one
    /// more session (the anchor) holds the login and serves the keepalive.
    pub max_sessions: usize,
    /// How long a signing call waits for a free session.
    pub acquire_timeout: Duration,
    /// Interval of the keepalive call on the idle anchor session.
    pub keepalive_interval: Duration,
    /// First retry delay after the signer goes down (doubles up to `max_backoff`).
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// systemd credential name holding the PIN when the URI has no pin-source.
    pub credential: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_sessions: config::DEFAULT_MAX_SESSIONS,
            acquire_timeout: config::DEFAULT_SIGN_TIMEOUT,
            keepalive_interval: config::DEFAULT_KEEPALIVE_INTERVAL,
            initial_backoff: Duration::from_millis(200),
            // Signing must be back within 5 s of the token's return (SECURITY.md, mitigations);
            // a failed re-initialisation against an absent token is cheap, so retry at least
            // every 1 s.
            max_backoff: Duration::from_secs(1),
            credential: DEFAULT_CREDENTIAL.to_owned(),
        }
    }
}

impl From<&crate::config::SignerConfig> for Settings {
    fn from(c: &crate::config::SignerConfig) -> Settings {
        Settings {
            max_sessions: c.max_sessions,
            acquire_timeout: c.sign_timeout,
            keepalive_interval: c.keepalive_interval,
            ..Settings::default()
        }
    }
}

/// Whether the signer can sign now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerStatus {
    /// Logged in, key found: signing works.
    Up,
    /// Signing fails fast.
    Down {
        /// Why (the PKCS#11 function and code, or the refusal).
        reason: String,
        /// Whether the background thread keeps trying (false after a refused PIN).
        retrying: bool,
    },
}

struct Wake {
    pending: Mutex<bool>,
    /// Set when the owner dropped the signer: the supervisor ends.
    stop: AtomicBool,
    cv: Condvar,
}

impl Wake {
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.notify();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn notify(&self) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_all();
    }

    fn wait(&self, timeout: Duration) {
        let guard = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |p| !*p)
            .unwrap_or_else(PoisonError::into_inner);
        *guard = false;
    }
}

/// The CA key in a PKCS#11 token, behind a bounded session pool. Implements [`SignKey`];
/// the methods of [`SignerCore`] are reachable through it.
///
/// `sign` blocks: from async code use [`TokenSigner::sign_async`] (a blocking thread), never
/// call it on the runtime's worker threads.
///
/// Dropping the last handle stops the supervisor thread (waiting at most
/// [`module::CLOSE_WAIT`] for a call it has inside the token), then closes the sessions and
/// finalises the module on the dropping thread: when `drop` returns, the module can be opened
/// again, and a process that exits next does not race a `C_Finalize` on another thread.
pub struct TokenSigner {
    core: Arc<SignerCore>,
    /// Disconnected when the supervisor thread has ended (and released its reference).
    supervisor_done: Mutex<Option<mpsc::Receiver<()>>>,
}

/// The state behind a [`TokenSigner`], shared with its supervisor thread.
pub struct SignerCore {
    ctx: Pkcs11,
    uri: Pkcs11Uri,
    pin: Pin,
    settings: Settings,
    max_sessions: usize,
    public: PublicKey,
    live: RwLock<Option<Live>>,
    ready: AtomicBool,
    status: Mutex<SignerStatus>,
    wake: Arc<Wake>,
    bad_signatures: AtomicU64,
    recoveries: AtomicU64,
    /// Start of each call now inside the token, by call number: a call older than the sign
    /// timeout means a hung device (a PKCS#11 call cannot be cancelled), see [`Self::ready`].
    in_flight: Mutex<BTreeMap<u64, Instant>>,
    next_call: AtomicU64,
    /// Counts this signer as open until after its module is finalised (in `drop`).
    _open: module::OpenSigner,
}

/// One call inside the token, registered in `in_flight` until it returns.
struct InFlight<'a> {
    signer: &'a SignerCore,
    id: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.signer.calls().remove(&self.id);
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("uri", &self.uri)
            .field("algorithm", &self.public.algorithm)
            .field("ready", &self.ready())
            .finish()
    }
}

impl TokenSigner {
    /// Loads the module, initialises it once, logs in once, finds the key and its public key,
    /// and starts the keepalive/recovery thread. A refused PIN is tried exactly once.
    pub fn open(uri: &Pkcs11Uri, settings: Settings) -> Result<Arc<TokenSigner>, SignerError> {
        let pin = Pin::load(uri, &settings.credential)?;
        let ctx = module::load(&uri.module_path)?;
        let max_sessions = uri.max_sessions.unwrap_or(settings.max_sessions).max(1);
        let seen = module::signers_now();
        let (live, public) = match Live::start(&ctx, uri, &pin, max_sessions) {
            Err(SignerError::ModuleBusy) if module::await_close_since(seen, module::CLOSE_WAIT) => {
                Live::start(&ctx, uri, &pin, max_sessions)?
            }
            started => started?,
        };
        let core = Arc::new(SignerCore {
            ctx,
            uri: uri.clone(),
            pin,
            settings,
            max_sessions,
            public,
            live: RwLock::new(Some(live)),
            ready: AtomicBool::new(true),
            status: Mutex::new(SignerStatus::Up),
            wake: Arc::new(Wake {
                pending: Mutex::new(false),
                stop: AtomicBool::new(false),
                cv: Condvar::new(),
            }),
            bad_signatures: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            in_flight: Mutex::new(BTreeMap::new()),
            next_call: AtomicU64::new(0),
            _open: module::OpenSigner::register(),
        });
        let weak = Arc::downgrade(&core);
        let wake = Arc::clone(&core.wake);
        let (done, supervisor_done) = mpsc::channel();
        std::thread::Builder::new()
            .name("pkcs11-supervisor".into())
            .spawn(move || supervise(&weak, &wake, done))
            .map_err(|_| SignerError::TaskFailed)?;
        Ok(Arc::new(TokenSigner {
            core,
            supervisor_done: Mutex::new(Some(supervisor_done)),
        }))
    }

    /// Signs on a blocking thread (`tokio::task::spawn_blocking`), never on the runtime.
    pub async fn sign_async(self: &Arc<Self>, msg: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.sign_blocking(&msg))
            .await
            .map_err(|_| SignerError::TaskFailed)?
    }
}

impl std::ops::Deref for TokenSigner {
    type Target = SignerCore;

    fn deref(&self) -> &SignerCore {
        &self.core
    }
}

impl SignerCore {
    /// True when signing works now (for the readiness probe). A call that has been inside
    /// the token for longer than the sign timeout (a hung device) marks the signer down here:
    /// the call itself cannot be cancelled, but callers stop waiting for it and fail fast.
    pub fn ready(&self) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return false;
        }
        let oldest = self.calls().values().next().map(Instant::elapsed);
        match oldest {
            Some(age) if age > self.settings.acquire_timeout => {
                let limit = self.settings.acquire_timeout;
                self.mark_down(
                    format!("a call into the token has not returned within {limit:?}"),
                    true,
                );
                false
            }
            _ => true,
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Instant>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call into the token until the guard drops.
    fn enter(&self) -> InFlight<'_> {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.calls().insert(id, Instant::now());
        InFlight { signer: self, id }
    }

    /// Up, or down and why.
    pub fn status(&self) -> SignerStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm
    }

    /// SHA-256 fingerprint (hex) of the public key's SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> Result<String, SignerError> {
        self.public.fingerprint()
    }

    /// The pool bound.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Most signing sessions in use (signing) at once since the last (re)initialisation.
    pub fn peak_sessions(&self) -> usize {
        self.read_live().as_ref().map_or(0, Live::peak_sessions)
    }

    /// Signing sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.read_live().as_ref().map_or(0, Live::open_sessions)
    }

    /// Signatures from the token that failed verification (never returned).
    pub fn bad_signatures(&self) -> u64 {
        self.bad_signatures.load(Ordering::Relaxed)
    }

    /// Successful re-initialisations after a device error.
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Relaxed)
    }

    fn read_live(&self) -> std::sync::RwLockReadGuard<'_, Option<Live>> {
        self.live.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn unavailable(&self) -> SignerError {
        let reason = match self.status() {
            SignerStatus::Down { reason, .. } => reason,
            SignerStatus::Up => "re-initialising".to_owned(),
        };
        SignerError::Unavailable { reason }
    }

    /// Signs and verifies. Session errors evict the session and retry once on a fresh one;
    /// device errors mark the signer down and fail.
    pub fn sign_blocking(&self, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        if !self.ready() {
            return Err(self.unavailable());
        }
        let metrics = crate::metrics::global();
        let started = std::time::Instant::now();
        let sig = {
            let guard = self.read_live();
            match guard.as_ref() {
                Some(live) => self.sign_on(live, msg),
                None => Err(self.unavailable()),
            }
        };
        metrics.observe_sign(started.elapsed());
        let checked = sig.and_then(|sig| self.check(msg, sig));
        match &checked {
            // Every signature released with the key (SECURITY.md M-HARD-3): the audit log
            // holds one signature record for each.
            Ok(_) => {
                metrics.ca_signatures.inc();
            }
            Err(_) => {
                metrics.token_sign_errors.inc();
            }
        }
        match checked {
            Ok(sig) => Ok(sig),
            // A pool timeout means every session is stuck in the token (e.g. a hung device):
            // mark down so that callers fail fast until the stuck calls return and the
            // supervisor re-initialises.
            Err(e)
                if matches!(e.class(), Some(ErrorClass::Device | ErrorClass::Pin))
                    || matches!(e, SignerError::PoolTimeout { .. }) =>
            {
                self.mark_down(e.to_string(), true);
                Err(SignerError::Unavailable {
                    reason: e.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Signs `msg` with another key of this token, named by label (the audit key), on a
    /// pooled session; the signature is checked with that key's public half, which is
    /// returned with it.
    pub fn sign_with_label(
        &self,
        label: &str,
        msg: &[u8],
    ) -> Result<(Vec<u8>, PublicKey), SignerError> {
        if !self.ready() {
            return Err(self.unavailable());
        }
        let mut other = self.uri.clone();
        other.id = None;
        other.object = Some(label.to_owned());
        let guard = self.read_live();
        let live = guard.as_ref().ok_or_else(|| self.unavailable())?;
        let (sig, public) = live.sign_other(&other, self.settings.acquire_timeout, msg)?;
        public.verify(msg, &sig)?;
        Ok((sig, public))
    }

    fn sign_on(&self, live: &Live, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        let mut last = None;
        for _ in 0..2 {
            let p = self.take_queued(live)?;
            let call = self.enter();
            let signed = p.sign(&self.public, msg);
            drop(call);
            match signed {
                Ok(sig) => {
                    live.give(p);
                    return Ok(sig);
                }
                Err(e) if e.class() == Some(ErrorClass::Session) => {
                    tracing::warn!(error = %e, "evicting PKCS#11 session");
                    live.evict(p);
                    last = Some(e);
                }
                Err(e) if e.class() == Some(ErrorClass::Request) || e.class().is_none() => {
                    live.give(p);
                    return Err(e);
                }
                Err(e) => {
                    live.evict(p);
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or(SignerError::TaskFailed))
    }

    /// A session from the pool. Waiting longer than the sign timeout is queueing, not a
    /// fault, while the token is making progress: a slow token (a TPM signs in tens of
    /// milliseconds) under a burst keeps every session busy with calls that do return. Only
    /// when a call inside the token is older than the sign timeout (a hung device) does the
    /// wait end with [`SignerError::PoolTimeout`]. The queue is bounded by the callers: the
    /// server's `max_requests_in_flight` (429 + `Retry-After` beyond), and served in order
    /// (the pool's queue is first come, first served).
    fn take_queued(&self, live: &Live) -> Result<crate::signer::pool::Pooled, SignerError> {
        live.take(self.settings.acquire_timeout, &|| {
            let keep = self.ready.load(Ordering::Acquire) && self.progressing();
            if keep {
                tracing::debug!("still queued for a PKCS#11 session behind a slow token");
            }
            keep
        })
    }

    /// True when calls are inside the token and none has been there longer than the sign
    /// timeout (the sessions are busy, not stuck).
    fn progressing(&self) -> bool {
        self.calls()
            .values()
            .next()
            .is_some_and(|t| t.elapsed() <= self.settings.acquire_timeout)
    }

    fn check(&self, msg: &[u8], sig: Vec<u8>) -> Result<Vec<u8>, SignerError> {
        match self.public.verify(msg, &sig) {
            Ok(()) => Ok(sig),
            Err(e) => {
                self.bad_signatures.fetch_add(1, Ordering::Relaxed);
                tracing::error!("the token returned a signature that does not verify");
                Err(e)
            }
        }
    }

    fn mark_down(&self, reason: String, retrying: bool) {
        let was_up = self.ready.swap(false, Ordering::AcqRel);
        if was_up {
            tracing::error!(%reason, "PKCS#11 signer down");
        }
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) =
            SignerStatus::Down { reason, retrying };
        if was_up {
            self.wake.notify();
        }
    }

    fn mark_up(&self) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = SignerStatus::Up;
        self.ready.store(true, Ordering::Release);
        tracing::info!("PKCS#11 signer up");
    }

    /// Finalize + initialize + login + re-find keys, with the write lock held so no other
    /// thread is inside the library.
    fn recover(&self) -> Result<(), SignerError> {
        let mut guard = self.live.write().unwrap_or_else(PoisonError::into_inner);
        match guard.take() {
            Some(old) => old.teardown(),
            None => module::finalize(&self.ctx),
        }
        let (live, public) = Live::start(&self.ctx, &self.uri, &self.pin, self.max_sessions)?;
        if public != self.public {
            live.teardown();
            return Err(SignerError::KeyChanged);
        }
        *guard = Some(live);
        drop(guard);
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        self.mark_up();
        Ok(())
    }

    fn keepalive(&self) {
        let result = match self.read_live().as_ref() {
            Some(live) => {
                let _call = self.enter();
                live.keepalive()
            }
            None => return,
        };
        if let Err(e) = result
            && e.class() != Some(ErrorClass::Request)
        {
            self.mark_down(e.to_string(), true);
        }
    }
}

/// The background thread: keepalive while up; re-initialise with backoff while down; give up
/// (stay down, say why) when the PIN is refused. Exits when the signer is dropped.
/// `_done` is dropped (disconnecting the owner's receiver) after the last reference this
/// thread held.
fn supervise(weak: &Weak<SignerCore>, wake: &Wake, _done: mpsc::Sender<()>) {
    let mut backoff = None;
    loop {
        if wake.stopped() {
            return;
        }
        let Some(signer) = weak.upgrade() else {
            return;
        };
        let wait = match signer.status() {
            SignerStatus::Up => {
                backoff = None;
                signer.keepalive();
                signer.settings.keepalive_interval
            }
            SignerStatus::Down {
                retrying: false, ..
            } => signer.settings.max_backoff,
            SignerStatus::Down { .. } => {
                let delay = backoff.unwrap_or(signer.settings.initial_backoff);
                match signer.recover() {
                    Ok(()) => signer.settings.keepalive_interval,
                    Err(e) => {
                        let retrying = e.class() != Some(ErrorClass::Pin)
                            && !matches!(e, SignerError::KeyChanged);
                        tracing::warn!(error = %e, retrying, "PKCS#11 re-initialisation failed");
                        signer.mark_down(e.to_string(), retrying);
                        backoff = Some((delay * 2).min(signer.settings.max_backoff));
                        delay
                    }
                }
            }
        };
        drop(signer);
        wake.wait(wait);
    }
}

impl Drop for TokenSigner {
    /// Stops the supervisor and waits (bounded) until it has let go of the core, so that the
    /// core is closed here, when `self.core` drops after this.
    fn drop(&mut self) {
        self.core.wake.stop();
        let done = self
            .supervisor_done
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(done) = done
            && let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(module::CLOSE_WAIT)
        {
            tracing::warn!(
                "the PKCS#11 supervisor is still inside the token; the module is finalised when \
                 that call returns"
            );
        }
    }
}

impl Drop for SignerCore {
    /// Closes the sessions and finalises the module, so it can be opened again.
    fn drop(&mut self) {
        let live = self
            .live
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(live) = live {
            live.teardown();
            tracing::info!("PKCS#11 token closed: sessions closed (logged out), module finalized");
        }
        self.wake.notify();
    }
}

impl SignKey for TokenSigner {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.core.public.spki
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        self.core.public.algorithm.signature_algorithm()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.core.sign_blocking(message)
    }
}

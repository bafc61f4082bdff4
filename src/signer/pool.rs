//! One initialised module instance ("live"): the slot, an anchor session that holds the login
//! and serves keepalives, and a bounded pool of signing sessions, each with its cached key
//! handle and used by one thread at a time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use crate::signer::key::SignerError;
use crate::signer::module;
use crate::signer::pin::Pin;
use crate::signer::pubkey::{PublicKey, ecdsa_der};
use crate::signer::uri::Pkcs11Uri;

/// A signing session with the private-key handle found in it.
pub(crate) struct Pooled {
    session: Session,
    key: ObjectHandle,
    /// The other key last used on this session ([`Live::sign_other`]: the audit key), found
    /// once per session like `key`.
    other: Option<OtherKey>,
}

/// Another key of the token as found in one session: its id and label as asked for, its
/// handle and its public half.
struct OtherKey {
    id: Option<Vec<u8>>,
    object: Option<String>,
    handle: ObjectHandle,
    spki: spki::SubjectPublicKeyInfoOwned,
}

impl Pooled {
    /// Signs on the token: software hash + raw `CKM_ECDSA` (r‖s → DER), or
    /// `CKM_SHA256_RSA_PKCS`. Not verified yet.
    pub(crate) fn sign(&self, public: &PublicKey, msg: &[u8]) -> Result<Vec<u8>, SignerError> {
        sign_raw(&self.session, self.key, public, msg)
    }
}

fn sign_raw(
    session: &Session,
    key: ObjectHandle,
    public: &PublicKey,
    msg: &[u8],
) -> Result<Vec<u8>, SignerError> {
    let alg = public.algorithm;
    match alg.ec_scalar_len() {
        Some(n) => {
            let digest = aws_lc_rs::digest::digest(alg.ec_digest(), msg);
            let raw = module::map(session.sign(&Mechanism::Ecdsa, key, digest.as_ref()))?;
            ecdsa_der(&raw, n)
        }
        None => module::map(session.sign(&Mechanism::Sha256RsaPkcs, key, msg)),
    }
}

/// The handle and public half of `other` in `p`'s session: kept from an earlier call on this
/// session when it asked for the same id and label, else found and kept now.
fn other_key(p: &mut Pooled, other: &Pkcs11Uri) -> Result<(ObjectHandle, PublicKey), SignerError> {
    if let Some(k) = &p.other
        && k.id == other.id
        && k.object == other.object
    {
        return Ok((k.handle, PublicKey::from_spki(k.spki.clone())?));
    }
    let handle = module::find_private_key(&p.session, other)?;
    let public = module::read_public_key(&p.session, handle, other)?;
    p.other = Some(OtherKey {
        id: other.id.clone(),
        object: other.object.clone(),
        handle,
        spki: public.spki.clone(),
    });
    Ok((handle, public))
}

struct Idle {
    sessions: Vec<Pooled>,
    open: usize,
    /// Sessions checked out now (signing).
    in_use: usize,
    /// Callers waiting for a session, first come first served: a free session goes to the
    /// front waiter only, and a newcomer never takes one while others wait (no barging). With
    /// a slow token under a burst the wait is then bounded by the position in the queue.
    waiting: VecDeque<Arc<Waiter>>,
}

/// One waiting caller; woken alone when it reaches the front and a session is free.
struct Waiter {
    cv: Condvar,
}

impl Idle {
    /// Whether a session can be had now (idle, or room to open one).
    fn available(&self, max: usize) -> bool {
        !self.sessions.is_empty() || self.open < max
    }

    /// Wakes the front waiter if a session can be had.
    fn wake_front(&self, max: usize) {
        if self.available(max)
            && let Some(w) = self.waiting.front()
        {
            w.cv.notify_one();
        }
    }

    fn leave(&mut self, me: &Arc<Waiter>) {
        self.waiting.retain(|w| !Arc::ptr_eq(w, me));
    }
}

/// A live module: initialised, logged in, key found.
pub(crate) struct Live {
    ctx: Pkcs11,
    slot: Slot,
    uri: Pkcs11Uri,
    anchor: Mutex<Session>,
    idle: Mutex<Idle>,
    max: usize,
    /// Most sessions checked out at once.
    peak: AtomicUsize,
    /// The token has a random number generator (`CKF_RNG`): the keepalive uses it.
    rng: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Live {
    /// `C_Initialize`, select the token, open the anchor session, log in once, find the key
    /// and read its public key. On failure the module is finalised again.
    pub(crate) fn start(
        ctx: &Pkcs11,
        uri: &Pkcs11Uri,
        pin: &Pin,
        max: usize,
    ) -> Result<(Live, PublicKey), SignerError> {
        module::initialize(ctx)?;
        let started = (|| {
            let slot = module::select_slot(ctx, uri)?;
            let anchor = module::map(ctx.open_ro_session(slot))?;
            module::login(&anchor, pin)?;
            let key = module::find_private_key(&anchor, uri)?;
            let public = module::read_public_key(&anchor, key, uri)?;
            // Not every token's information parses (docs/tokens.md): then no random byte.
            let rng = ctx.get_token_info(slot).is_ok_and(|i| i.rng());
            let live = Live {
                ctx: ctx.clone(),
                slot,
                uri: uri.clone(),
                anchor: Mutex::new(anchor),
                idle: Mutex::new(Idle {
                    sessions: Vec::new(),
                    open: 0,
                    in_use: 0,
                    waiting: VecDeque::new(),
                }),
                max: max.max(1),
                peak: AtomicUsize::new(0),
                rng,
            };
            live.fill();
            Ok((live, public))
        })();
        if started.is_err() {
            module::finalize(ctx);
        }
        started
    }

    /// Closes every session and finalises the module. Called with the signer's write lock
    /// held, so no other thread is inside the library.
    pub(crate) fn teardown(self) {
        let Live {
            ctx, anchor, idle, ..
        } = self;
        let idle = idle.into_inner().unwrap_or_else(PoisonError::into_inner);
        drop(idle.sessions);
        drop(anchor);
        module::finalize(&ctx);
    }

    /// Takes a session from the pool, opening one if fewer than `max` are open, else waits in
    /// line (first come, first served). Each time `timeout` passes without a session,
    /// `keep_waiting` decides: true keeps the caller's place in line, false ends the wait with
    /// [`SignerError::PoolTimeout`].
    pub(crate) fn take(
        &self,
        timeout: Duration,
        keep_waiting: &dyn Fn() -> bool,
    ) -> Result<Pooled, SignerError> {
        let taken = self.take_inner(timeout, keep_waiting);
        if taken.is_ok() {
            // `token_sessions_in_use`: sessions checked out of the pool (not calls waiting).
            crate::metrics::global().sessions_in_use.inc();
        }
        taken
    }

    fn take_inner(
        &self,
        timeout: Duration,
        keep_waiting: &dyn Fn() -> bool,
    ) -> Result<Pooled, SignerError> {
        let mut idle = lock(&self.idle);
        let me = Arc::new(Waiter { cv: Condvar::new() });
        idle.waiting.push_back(Arc::clone(&me));
        let mut deadline = Instant::now() + timeout;
        loop {
            let first = idle.waiting.front().is_some_and(|w| Arc::ptr_eq(w, &me));
            if first {
                if let Some(p) = idle.sessions.pop() {
                    idle.waiting.pop_front();
                    self.check_out(&mut idle);
                    idle.wake_front(self.max);
                    return Ok(p);
                }
                if idle.open < self.max {
                    idle.waiting.pop_front();
                    idle.open += 1;
                    self.check_out(&mut idle);
                    idle.wake_front(self.max);
                    drop(idle);
                    return self.open_pooled().inspect_err(|_| self.forget_one());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Not under the pool's lock: the caller's check takes the signer's locks.
                drop(idle);
                let keep = keep_waiting();
                idle = lock(&self.idle);
                if keep {
                    deadline = Instant::now() + timeout;
                    continue;
                }
                idle.leave(&me);
                idle.wake_front(self.max);
                return Err(SignerError::PoolTimeout { waited: timeout });
            }
            idle = me
                .cv
                .wait_timeout(idle, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Signs with another private key of the same token (found by `other`'s id / label in a
    /// pooled session, e.g. the audit key); returns the signature and that key's public half.
    /// The key is looked up once per session and kept with it, as the signing key is: an
    /// audit checkpoint on a network HSM then costs the signature's round trips, not five more
    /// for the lookup. A failed signature forgets it (looked up again next time).
    pub(crate) fn sign_other(
        &self,
        other: &Pkcs11Uri,
        timeout: Duration,
        msg: &[u8],
    ) -> Result<(Vec<u8>, PublicKey), SignerError> {
        let mut p = self.take(timeout, &|| false)?;
        let signed: Result<(Vec<u8>, PublicKey), SignerError> = (|| {
            let (key, public) = other_key(&mut p, other)?;
            let sig = sign_raw(&p.session, key, &public, msg);
            if sig.is_err() {
                p.other = None;
            }
            Ok((sig?, public))
        })();
        match &signed {
            Err(e) if e.class() == Some(crate::signer::ErrorClass::Session) => self.evict(p),
            _ => self.give(p),
        }
        signed
    }

    fn check_out(&self, idle: &mut Idle) {
        idle.in_use += 1;
        self.peak.fetch_max(idle.in_use, Ordering::Relaxed);
    }

    /// Opens the signing sessions (each with its key handle) before the first signatures, so
    /// that the first requests after a start or a recovery do not each wait for a session's
    /// open and key lookup (four calls; round trips to a network HSM) while holding their
    /// place in line. Stops at the first refusal (a token that allows fewer sessions than
    /// configured): the pool opens the rest when they are needed, as it always could.
    fn fill(&self) {
        let mut opened = Vec::with_capacity(self.max);
        while opened.len() < self.max {
            match self.open_pooled() {
                Ok(p) => opened.push(p),
                Err(e) => {
                    tracing::debug!(error = %e, opened = opened.len(), "signing sessions opened ahead");
                    break;
                }
            }
        }
        let mut idle = lock(&self.idle);
        idle.open += opened.len();
        idle.sessions.extend(opened);
    }

    fn open_pooled(&self) -> Result<Pooled, SignerError> {
        let session = module::map(self.ctx.open_ro_session(self.slot))?;
        let key = module::find_private_key(&session, &self.uri)?;
        Ok(Pooled {
            session,
            key,
            other: None,
        })
    }

    /// Returns a healthy session to the pool.
    pub(crate) fn give(&self, p: Pooled) {
        crate::metrics::global().sessions_in_use.dec();
        let mut idle = lock(&self.idle);
        idle.in_use = idle.in_use.saturating_sub(1);
        idle.sessions.push(p);
        idle.wake_front(self.max);
    }

    /// Closes a dead session and frees its place in the pool.
    pub(crate) fn evict(&self, p: Pooled) {
        crate::metrics::global().sessions_in_use.dec();
        drop(p);
        self.forget_one();
    }

    fn forget_one(&self) {
        let mut idle = lock(&self.idle);
        idle.open = idle.open.saturating_sub(1);
        idle.in_use = idle.in_use.saturating_sub(1);
        idle.wake_front(self.max);
    }

    /// A cheap call on the anchor session (`C_GetSessionInfo`): detects a dead device or a
    /// vendor idle timeout. On a token with a random number generator also one random byte
    /// (`C_GenerateRandom`), which reaches the device: tpm2-pkcs11 answers
    /// `C_GetSessionInfo` from memory, so only a call into the TPM sees it gone while idle.
    pub(crate) fn keepalive(&self) -> Result<(), SignerError> {
        let anchor = lock(&self.anchor);
        module::map(anchor.get_session_info())?;
        if self.rng {
            module::map(anchor.generate_random_vec(1))?;
        }
        Ok(())
    }

    /// Signing sessions open now.
    pub(crate) fn open_sessions(&self) -> usize {
        lock(&self.idle).open
    }

    /// Most signing sessions ever in use (signing) at once.
    pub(crate) fn peak_sessions(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

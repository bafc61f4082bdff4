//! One initialised module instance ("live"): the slot, an anchor session that holds the login
//! and serves keepalives, and a bounded pool of signing sessions, each with its cached key
//! handle and used by one thread at a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
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

struct Idle {
    sessions: Vec<Pooled>,
    open: usize,
}

/// A live module: initialised, logged in, key found.
pub(crate) struct Live {
    ctx: Pkcs11,
    slot: Slot,
    uri: Pkcs11Uri,
    anchor: Mutex<Session>,
    idle: Mutex<Idle>,
    freed: Condvar,
    max: usize,
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
                }),
                freed: Condvar::new(),
                max: max.max(1),
                peak: AtomicUsize::new(0),
                rng,
            };
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

    /// Takes a session from the pool, opening one if fewer than `max` are open, else waits
    /// up to `timeout` for one to be returned.
    pub(crate) fn take(&self, timeout: Duration) -> Result<Pooled, SignerError> {
        let taken = self.take_inner(timeout);
        if taken.is_ok() {
            // `token_sessions_in_use`: sessions checked out of the pool (not calls waiting).
            crate::metrics::global().sessions_in_use.inc();
        }
        taken
    }

    fn take_inner(&self, timeout: Duration) -> Result<Pooled, SignerError> {
        let deadline = Instant::now() + timeout;
        let mut idle = lock(&self.idle);
        loop {
            if let Some(p) = idle.sessions.pop() {
                return Ok(p);
            }
            if idle.open < self.max {
                idle.open += 1;
                self.peak.fetch_max(idle.open, Ordering::Relaxed);
                drop(idle);
                return self.open_pooled().inspect_err(|_| self.forget_one());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SignerError::PoolTimeout { waited: timeout });
            }
            idle = self
                .freed
                .wait_timeout(idle, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Signs with another private key of the same token (found by `other`'s id / label in a
    /// pooled session, e.g. the audit key); returns the signature and that key's public half.
    /// Rare (audit checkpoints), so the key is looked up on every call.
    pub(crate) fn sign_other(
        &self,
        other: &Pkcs11Uri,
        timeout: Duration,
        msg: &[u8],
    ) -> Result<(Vec<u8>, PublicKey), SignerError> {
        let p = self.take(timeout)?;
        let signed: Result<(Vec<u8>, PublicKey), SignerError> = (|| {
            let key = module::find_private_key(&p.session, other)?;
            let public = module::read_public_key(&p.session, key, other)?;
            let sig = sign_raw(&p.session, key, &public, msg)?;
            Ok((sig, public))
        })();
        match &signed {
            Err(e) if e.class() == Some(crate::signer::ErrorClass::Session) => self.evict(p),
            _ => self.give(p),
        }
        signed
    }

    fn open_pooled(&self) -> Result<Pooled, SignerError> {
        let session = module::map(self.ctx.open_ro_session(self.slot))?;
        let key = module::find_private_key(&session, &self.uri)?;
        Ok(Pooled { session, key })
    }

    /// Returns a healthy session to the pool.
    pub(crate) fn give(&self, p: Pooled) {
        crate::metrics::global().sessions_in_use.dec();
        lock(&self.idle).sessions.push(p);
        self.freed.notify_one();
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
        drop(idle);
        self.freed.notify_one();
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

    /// Most signing sessions ever open at once.
    pub(crate) fn peak_sessions(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

//! Loading and initialising the PKCS#11 module, selecting the token, logging in, and finding
//! the key and its public half. Shared by the signer, key generation and token set-up.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::Decode;

use crate::signer::ckr::{rv_of, to_signer_error};
use crate::signer::key::SignerError;
use crate::signer::pin::Pin;
use crate::signer::pubkey::PublicKey;
use crate::signer::uri::{Pkcs11Uri, TokenSelector};

/// Process-wide count of `C_Login` calls made by the signer (proof that a wrong PIN is tried
/// exactly once).
static LOGIN_CALLS: AtomicU64 = AtomicU64::new(0);

/// How many times this process called `C_Login` (all signers, key generation, token set-up).
pub fn login_calls() -> u64 {
    LOGIN_CALLS.load(Ordering::Relaxed)
}

/// Signers of this process that are open or still closing, and how many have closed. A
/// signer whose supervisor thread is stuck inside the token finalises the module only when
/// that call returns: a new `C_Initialize` in that window sees
/// `CKR_CRYPTOKI_ALREADY_INITIALIZED`.
static SIGNERS: Mutex<Signers> = Mutex::new(Signers { open: 0, closed: 0 });
static SIGNER_CLOSED: Condvar = Condvar::new();

/// How long an open waits for a closing signer of this process to finalise the module (and
/// how long a dropped signer waits for its supervisor thread).
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Open signers and closes so far, as seen before a `C_Initialize` (see [`await_close_since`]).
#[derive(Debug, Clone, Copy)]
pub struct Signers {
    open: usize,
    closed: u64,
}

fn signers() -> std::sync::MutexGuard<'static, Signers> {
    SIGNERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The signer count now: take it before `C_Initialize`.
pub fn signers_now() -> Signers {
    *signers()
}

/// Held by each open signer; dropped after its module is finalised.
#[derive(Debug)]
pub struct OpenSigner(());

impl OpenSigner {
    pub fn register() -> OpenSigner {
        signers().open += 1;
        OpenSigner(())
    }
}

impl Drop for OpenSigner {
    fn drop(&mut self) {
        let mut s = signers();
        s.open = s.open.saturating_sub(1);
        s.closed += 1;
        SIGNER_CLOSED.notify_all();
    }
}

/// After `ModuleBusy`: says whether a signer of this process has closed since `seen` (taken
/// before the failed `C_Initialize`), waiting at most `limit` for one when some were open then.
/// True means `C_Initialize` is worth one more try; with none open at `seen`, the module is
/// held by something else and this returns false at once.
pub fn await_close_since(seen: Signers, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut now = signers();
    while now.closed == seen.closed && seen.open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        now = SIGNER_CLOSED
            .wait_timeout(now, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    now.closed != seen.closed
}

/// Loads the module (no `C_Initialize` yet).
pub fn load(path: &Path) -> Result<Pkcs11, SignerError> {
    if !path.is_file() {
        return Err(SignerError::ModuleLoad {
            path: path.to_owned(),
            detail: "no such file".into(),
        });
    }
    Pkcs11::new(path).map_err(|e| SignerError::ModuleLoad {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// `C_Initialize` with OS locking, falling back to no locking flags on `CKR_CANT_LOCK`.
pub fn initialize(ctx: &Pkcs11) -> Result<(), SignerError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => Ok(()),
        Err(e) if rv_of(&e) == Some(RvError::CantLock) => ctx
            .initialize(CInitializeArgs::new(CInitializeFlags::empty()))
            .map_err(to_signer_error),
        Err(e) if rv_of(&e) == Some(RvError::CryptokiAlreadyInitialized) => {
            Err(SignerError::ModuleBusy)
        }
        Err(e) => Err(to_signer_error(e)),
    }
}

/// [`initialize`] for a fresh open (key generation, token set-up): when a signer of this
/// process is still finalising the module, waits for it (bounded) and tries once more.
pub fn initialize_waiting(ctx: &Pkcs11) -> Result<(), SignerError> {
    let seen = signers_now();
    match initialize(ctx) {
        Err(SignerError::ModuleBusy) if await_close_since(seen, CLOSE_WAIT) => initialize(ctx),
        other => other,
    }
}

/// `C_Finalize`, errors ignored (used on teardown of a dead or finished module).
pub fn finalize(ctx: &Pkcs11) {
    if let Err(e) = ctx.clone().finalize() {
        tracing::debug!(error = %e, "C_Finalize failed (ignored)");
    }
}

/// Finds the one slot whose token matches the URI.
pub fn select_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, SignerError> {
    let slots = ctx.get_slots_with_token().map_err(to_signer_error)?;
    // By slot id alone, the token information is not needed: some tokens report a value
    // cryptoki cannot parse (opencryptoki's soft token, its utcTime; docs/tokens.md).
    if let TokenSelector::SlotId(id) = &uri.token
        && uri.manufacturer.is_none()
        && uri.model.is_none()
    {
        return slots.into_iter().find(|s| s.id() == *id).ok_or_else(|| {
            SignerError::TokenNotFound {
                selector: uri.token.to_string(),
            }
        });
    }
    let mut found = Vec::new();
    for slot in slots {
        let info = ctx.get_token_info(slot).map_err(to_signer_error)?;
        let hit = match &uri.token {
            TokenSelector::Label(l) => info.label() == l,
            TokenSelector::Serial(s) => info.serial_number() == s,
            TokenSelector::SlotId(i) => slot.id() == *i,
        } && uri
            .manufacturer
            .as_deref()
            .is_none_or(|m| info.manufacturer_id() == m)
            && uri.model.as_deref().is_none_or(|m| info.model() == m);
        if hit {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(SignerError::TokenNotFound {
            selector: uri.token.to_string(),
        }),
        many => Err(SignerError::AmbiguousToken {
            selector: uri.token.to_string(),
            count: many.len(),
        }),
    }
}

/// `C_Login` as user; `CKR_USER_ALREADY_LOGGED_IN` is success. Counted in [`login_calls`].
pub fn login(session: &Session, pin: &Pin) -> Result<(), SignerError> {
    LOGIN_CALLS.fetch_add(1, Ordering::Relaxed);
    match session.login(UserType::User, Some(&pin.auth())) {
        Ok(()) => Ok(()),
        Err(e) if rv_of(&e) == Some(RvError::UserAlreadyLoggedIn) => Ok(()),
        Err(e) => Err(to_signer_error(e)),
    }
}

/// The search template for the private key.
pub fn private_key_template(uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    if let Some(o) = &uri.object {
        t.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    t
}

/// Finds exactly one private key matching the URI.
pub fn find_private_key(session: &Session, uri: &Pkcs11Uri) -> Result<ObjectHandle, SignerError> {
    let handles = session
        .find_objects(&private_key_template(uri))
        .map_err(to_signer_error)?;
    match handles.as_slice() {
        [one] => Ok(*one),
        [] => Err(SignerError::KeyNotFound {
            selector: uri.key_selector(),
        }),
        many => Err(SignerError::AmbiguousKey {
            selector: uri.key_selector(),
            count: many.len(),
        }),
    }
}

/// Reads the public key for `private`: from the public-key object with the same CKA_ID (or,
/// without an id, the same label), else from a certificate object.
pub fn read_public_key(
    session: &Session,
    private: ObjectHandle,
    uri: &Pkcs11Uri,
) -> Result<PublicKey, SignerError> {
    let id = match session.get_attributes(private, &[AttributeType::Id]) {
        Ok(attrs) => attrs.into_iter().find_map(|a| match a {
            Attribute::Id(v) if !v.is_empty() => Some(v),
            _ => None,
        }),
        Err(e) => return Err(to_signer_error(e)),
    };
    let mut sel = Vec::new();
    match (&id, &uri.object) {
        (Some(id), _) => sel.push(Attribute::Id(id.clone())),
        (None, Some(label)) => sel.push(Attribute::Label(label.as_bytes().to_vec())),
        (None, None) => {}
    }
    let mut t = sel.clone();
    t.push(Attribute::Class(ObjectClass::PUBLIC_KEY));
    let publics = session.find_objects(&t).map_err(to_signer_error)?;
    if let Some(h) = publics.first() {
        return public_from_object(session, *h);
    }
    sel.push(Attribute::Class(ObjectClass::CERTIFICATE));
    let certs = session.find_objects(&sel).map_err(to_signer_error)?;
    let Some(h) = certs.first() else {
        return Err(SignerError::PublicKeyNotFound {
            selector: uri.key_selector(),
        });
    };
    let attrs = session
        .get_attributes(*h, &[AttributeType::Value])
        .map_err(to_signer_error)?;
    let der = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| SignerError::PublicKeyNotFound {
            selector: uri.key_selector(),
        })?;
    let cert = x509_cert::Certificate::from_der(&der)?;
    PublicKey::from_spki(cert.tbs_certificate().subject_public_key_info().clone())
}

pub(crate) fn public_from_object(
    session: &Session,
    h: ObjectHandle,
) -> Result<PublicKey, SignerError> {
    let want = [
        AttributeType::EcParams,
        AttributeType::EcPoint,
        AttributeType::Modulus,
        AttributeType::PublicExponent,
    ];
    let attrs = session.get_attributes(h, &want).map_err(to_signer_error)?;
    let (mut params, mut point, mut modulus, mut exp) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exp = Some(v),
            _ => {}
        }
    }
    match (params, point, modulus, exp) {
        (Some(p), Some(q), _, _) => PublicKey::from_ec(&p, &q),
        (_, _, Some(n), Some(e)) => PublicKey::from_rsa(&n, &e),
        _ => Err(SignerError::UnsupportedKey {
            reason: "public-key object has neither EC nor RSA attributes",
        }),
    }
}

/// Maps a cryptoki error from a `Session`-returning call.
pub fn map<T>(r: Result<T, Error>) -> Result<T, SignerError> {
    r.map_err(to_signer_error)
}

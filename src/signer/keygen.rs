//! Key generation with an explicit template (token, private, sensitive, non-extractable, sign
//! only; see [`template`] for what is asked and checked on which token) and token set-up for
//! the dev mode (`C_InitToken` + `C_InitPIN`).

use std::path::Path;

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::Attribute;
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use secrecy::{ExposeSecret, SecretString};

use crate::signer::key::SignerError;
use crate::signer::module;
use crate::signer::pin::Pin;
use crate::signer::pubkey::{Algorithm, PublicKey};
use crate::signer::template;
use crate::signer::uri::{Pkcs11Uri, encode};

/// Bytes of a random CKA_ID when none is given (as `pkcs11-tool` and step-ca do).
pub const RANDOM_ID_LEN: usize = 16;
/// Label used when neither `--label` nor the URI's `object` gives one.
pub const DEFAULT_LABEL: &str = "kubesigner-ca";

/// What `keygen` made.
#[derive(Debug)]
pub struct GeneratedKey {
    /// CKA_ID.
    pub id: Vec<u8>,
    /// CKA_LABEL.
    pub label: String,
    /// The public key.
    pub public: PublicKey,
    /// The public key's capability attributes as the token set them (not asserted; they
    /// differ between tokens), e.g. `("CKA_VERIFY", false)` on tpm2-pkcs11.
    pub public_capabilities: Vec<(String, bool)>,
}

/// Generates a key pair in the token named by `uri`. `id`/`label` override the URI's
/// `id`/`object`. Refuses to overwrite an object with the same id or label.
pub fn keygen(
    uri: &Pkcs11Uri,
    algorithm: Algorithm,
    id: Option<Vec<u8>>,
    label: Option<String>,
) -> Result<GeneratedKey, SignerError> {
    let pin = Pin::load(uri, crate::signer::pin::DEFAULT_CREDENTIAL)?;
    let ctx = module::load(&uri.module_path)?;
    module::initialize_waiting(&ctx)?;
    let result = (|| {
        let slot = module::select_slot(&ctx, uri)?;
        let mechanism = template::check_mechanisms(&ctx, slot, algorithm)?;
        let session = module::map(ctx.open_rw_session(slot))?;
        module::login(&session, &pin)?;
        let label = label
            .or_else(|| uri.object.clone())
            .unwrap_or_else(|| DEFAULT_LABEL.to_owned());
        let id = match id.or_else(|| uri.id.clone()) {
            Some(id) => id,
            None => module::map(session.generate_random_vec(RANDOM_ID_LEN as u32))?,
        };
        refuse_existing(&session, &id, &label)?;
        generate(&session, mechanism, algorithm, &id, &label)
    })();
    module::finalize(&ctx);
    result
}

fn refuse_existing(session: &Session, id: &[u8], label: &str) -> Result<(), SignerError> {
    let by_id = module::map(session.find_objects(&[Attribute::Id(id.to_vec())]))?;
    if !by_id.is_empty() {
        return Err(SignerError::KeyExists {
            what: format!("id={}", encode(id)),
        });
    }
    let by_label =
        module::map(session.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]))?;
    if !by_label.is_empty() {
        return Err(SignerError::KeyExists {
            what: format!("object={}", encode(label.as_bytes())),
        });
    }
    Ok(())
}

fn generate(
    session: &Session,
    mechanism: MechanismType,
    algorithm: Algorithm,
    id: &[u8],
    label: &str,
) -> Result<GeneratedKey, SignerError> {
    let mechanism = if mechanism == MechanismType::ECC_KEY_PAIR_GEN {
        Mechanism::EccKeyPairGen
    } else {
        Mechanism::RsaPkcsKeyPairGen
    };
    let public_t = template::public_template(algorithm, id, label)?;
    let private_t = template::private_template(id, label);
    let (public_handle, private_handle) =
        module::map(session.generate_key_pair(&mechanism, &public_t, &private_t))?;
    let checked = template::check_private_key(session, private_handle)
        .and_then(|()| module::public_from_object(session, public_handle));
    match checked {
        Ok(public) => Ok(GeneratedKey {
            id: id.to_vec(),
            label: label.to_owned(),
            public,
            public_capabilities: template::public_capabilities(session, public_handle),
        }),
        Err(e) => {
            // Nothing half-made stays in the token.
            for h in [private_handle, public_handle] {
                if let Err(d) = session.destroy_object(h) {
                    tracing::error!(error = %d, "cannot destroy a refused key object");
                }
            }
            Err(e)
        }
    }
}

/// Initialises the first uninitialised slot of `module_path` as token `label` (SO PIN
/// `so_pin`) and sets its user PIN (`C_InitToken` + `C_InitPIN`). For `kubesigner dev`.
pub fn init_token(
    module_path: &Path,
    label: &str,
    so_pin: &SecretString,
    user_pin: &SecretString,
) -> Result<(), SignerError> {
    let ctx = module::load(module_path)?;
    module::initialize_waiting(&ctx)?;
    let result = (|| {
        let slots = module::map(ctx.get_all_slots())?;
        let mut free = None;
        for slot in slots {
            match ctx.get_token_info(slot) {
                Ok(info) if !info.token_initialized() => {
                    free = Some(slot);
                    break;
                }
                _ => {}
            }
        }
        let slot = free.ok_or(SignerError::NoFreeSlot)?;
        let so: AuthPin = SecretString::from(so_pin.expose_secret());
        module::map(ctx.init_token(slot, &so, label))?;
        let session = module::map(ctx.open_rw_session(slot))?;
        module::map(session.login(UserType::So, Some(&so)))?;
        let user: AuthPin = SecretString::from(user_pin.expose_secret());
        module::map(session.init_pin(&user))?;
        module::map(session.logout())
    })();
    module::finalize(&ctx);
    result
}

//! Key generation with an explicit template (token, private, sensitive, non-extractable, sign
//! only) and token set-up for the dev mode (`C_InitToken` + `C_InitPIN`).

use std::path::Path;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use secrecy::{ExposeSecret, SecretString};

use crate::signer::key::SignerError;
use crate::signer::module;
use crate::signer::pin::Pin;
use crate::signer::pubkey::{Algorithm, PublicKey};
use crate::signer::uri::{Pkcs11Uri, encode};

/// Bytes of a random CKA_ID when none is given (as `pkcs11-tool` and step-ca do).
pub const RANDOM_ID_LEN: usize = 16;
/// Label used when neither `--label` nor the URI's `object` gives one.
pub const DEFAULT_LABEL: &str = "kubesigner-ca";
/// The RSA public exponent F4.
const RSA_F4: [u8; 3] = [0x01, 0x00, 0x01];

/// What `keygen` made.
#[derive(Debug)]
pub struct GeneratedKey {
    /// CKA_ID.
    pub id: Vec<u8>,
    /// CKA_LABEL.
    pub label: String,
    /// The public key.
    pub public: PublicKey,
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
    module::initialize(&ctx)?;
    let result = (|| {
        let slot = module::select_slot(&ctx, uri)?;
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
        generate(&session, algorithm, &id, &label)
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

/// The public-key template: token object, verify only.
fn public_template(
    algorithm: Algorithm,
    id: &[u8],
    label: &str,
) -> Result<Vec<Attribute>, SignerError> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::VerifyRecover(false),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    match (algorithm.curve(), algorithm.rsa_bits()) {
        (Some(curve), _) => t.push(Attribute::EcParams(der::Encode::to_der(&curve)?)),
        (None, Some(bits)) => {
            t.push(Attribute::ModulusBits(bits.into()));
            t.push(Attribute::PublicExponent(RSA_F4.to_vec()));
        }
        (None, None) => {
            return Err(SignerError::UnsupportedKey {
                reason: "algorithm has neither a curve nor a modulus size",
            });
        }
    }
    Ok(t)
}

/// The private-key template: token, private, sensitive, never extractable, sign only.
fn private_template(id: &[u8], label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::SignRecover(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn generate(
    session: &Session,
    algorithm: Algorithm,
    id: &[u8],
    label: &str,
) -> Result<GeneratedKey, SignerError> {
    let mechanism = if algorithm.curve().is_some() {
        Mechanism::EccKeyPairGen
    } else {
        Mechanism::RsaPkcsKeyPairGen
    };
    let public_t = public_template(algorithm, id, label)?;
    let private_t = private_template(id, label);
    let (public_handle, _) =
        module::map(session.generate_key_pair(&mechanism, &public_t, &private_t))?;
    let public = module::public_from_object(session, public_handle)?;
    Ok(GeneratedKey {
        id: id.to_vec(),
        label: label.to_owned(),
        public,
    })
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
    module::initialize(&ctx)?;
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

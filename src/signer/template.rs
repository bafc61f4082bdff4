//! What key generation asks of the token, and what it checks afterwards.
//!
//! Tokens differ in which attributes they let a caller set. `tpm2-pkcs11` derives a key's
//! capabilities from one TPM object: `CKA_VERIFY` on the public key *is* the TPM's "decrypt"
//! bit and `CKA_ENCRYPT` *is* its "sign" bit, so asserting the usual `CKA_VERIFY = true,
//! CKA_ENCRYPT = false` on the public half fails keygen with `CKR_GENERAL_ERROR`. So:
//!
//! 1. The token's mechanism information is read first: a key pair generator for the algorithm,
//!    a key size inside its range, and the signing mechanism; a token that lacks one is
//!    refused by name before anything is made.
//! 2. The public template holds what identifies the key, its parameters, and "no wrap, no
//!    derive, no verify-recover". `CKA_VERIFY` and `CKA_ENCRYPT` are left to the token and
//!    reported, never asserted: a one-object token (the TPM) fixes them from the private half,
//!    and both are operations anyone holding the public key can perform anyway.
//! 3. The private template asserts every protection: token, private, sensitive, never
//!    extractable, sign only (no decrypt, unwrap, derive or sign-recover).
//! 4. The private key's attributes are read back; a key that is not sensitive, never
//!    extractable, generated in the token and sign-only is destroyed and refused.

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use crate::signer::ckr::{rv_of, to_signer_error};
use crate::signer::key::SignerError;
use crate::signer::pubkey::Algorithm;

/// The RSA public exponent F4.
const RSA_F4: [u8; 3] = [0x01, 0x00, 0x01];

/// The key pair generator and the signing mechanism the signer uses for `algorithm`.
fn mechanisms(algorithm: Algorithm) -> (MechanismType, &'static str, MechanismType, &'static str) {
    if algorithm.curve().is_some() {
        (
            MechanismType::ECC_KEY_PAIR_GEN,
            "CKM_EC_KEY_PAIR_GEN",
            MechanismType::ECDSA,
            "CKM_ECDSA",
        )
    } else {
        (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            "CKM_RSA_PKCS_KEY_PAIR_GEN",
            MechanismType::SHA256_RSA_PKCS,
            "CKM_SHA256_RSA_PKCS",
        )
    }
}

/// The key size in bits, as PKCS#11 mechanism information counts it (curve size for EC).
fn key_bits(algorithm: Algorithm) -> u64 {
    match (algorithm.ec_scalar_len(), algorithm.rsa_bits()) {
        (Some(bytes), _) => (bytes as u64) * 8,
        (None, Some(bits)) => bits,
        (None, None) => 0,
    }
}

/// Checks the token's mechanism information for `algorithm`: a key pair generator whose key
/// size range holds the key, and a signing mechanism. Returns the generator.
pub(crate) fn check_mechanisms(
    ctx: &Pkcs11,
    slot: Slot,
    algorithm: Algorithm,
) -> Result<MechanismType, SignerError> {
    let (gen_type, gen_name, sign_type, sign_name) = mechanisms(algorithm);
    let unsupported = |detail: String| SignerError::TokenLacks {
        algorithm: algorithm.name(),
        detail,
    };
    let info = |t: MechanismType, name: &str| match ctx.get_mechanism_info(slot, t) {
        Ok(info) => Ok(info),
        Err(e) if rv_of(&e) == Some(RvError::MechanismInvalid) => {
            Err(unsupported(format!("the token has no {name}")))
        }
        Err(e) => Err(to_signer_error(e)),
    };
    let gen_info = info(gen_type, gen_name)?;
    if !gen_info.generate_key_pair() {
        return Err(unsupported(format!(
            "{gen_name} cannot generate key pairs on this token"
        )));
    }
    let bits = key_bits(algorithm);
    let (min, max) = (
        gen_info.min_key_size() as u64,
        gen_info.max_key_size() as u64,
    );
    // A range of 0..0 means "not reported" (some tokens leave it empty).
    if max != 0 && !(min..=max).contains(&bits) {
        return Err(unsupported(format!(
            "{gen_name} makes keys of {min} to {max} bits, not {bits}"
        )));
    }
    if !info(sign_type, sign_name)?.sign() {
        return Err(unsupported(format!(
            "{sign_name} cannot sign on this token"
        )));
    }
    Ok(gen_type)
}

/// The public-key template: a token object identified by `id` and `label`, the key's
/// parameters, no wrap / derive / verify-recover; `CKA_VERIFY` and `CKA_ENCRYPT` left to the
/// token (see the module documentation).
pub(crate) fn public_template(
    algorithm: Algorithm,
    id: &[u8],
    label: &str,
) -> Result<Vec<Attribute>, SignerError> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::VerifyRecover(false),
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
pub(crate) fn private_template(id: &[u8], label: &str) -> Vec<Attribute> {
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

/// A boolean attribute the private key must carry, and the value it must have. `required`
/// false means an absent attribute is accepted (a token without the capability at all).
struct Rule {
    attribute: AttributeType,
    name: &'static str,
    value: bool,
    required: bool,
}

const fn rule(attribute: AttributeType, name: &'static str, value: bool, required: bool) -> Rule {
    Rule {
        attribute,
        name,
        value,
        required,
    }
}

/// What the signing key must be: kept in the token, never readable, made there, sign only.
const PRIVATE_KEY_RULES: &[Rule] = &[
    rule(AttributeType::Token, "CKA_TOKEN", true, true),
    rule(AttributeType::Private, "CKA_PRIVATE", true, true),
    rule(AttributeType::Sensitive, "CKA_SENSITIVE", true, true),
    rule(
        AttributeType::AlwaysSensitive,
        "CKA_ALWAYS_SENSITIVE",
        true,
        true,
    ),
    rule(AttributeType::Extractable, "CKA_EXTRACTABLE", false, true),
    rule(
        AttributeType::NeverExtractable,
        "CKA_NEVER_EXTRACTABLE",
        true,
        true,
    ),
    rule(AttributeType::Local, "CKA_LOCAL", true, true),
    rule(AttributeType::Sign, "CKA_SIGN", true, true),
    rule(AttributeType::Decrypt, "CKA_DECRYPT", false, false),
    rule(AttributeType::Unwrap, "CKA_UNWRAP", false, false),
    rule(AttributeType::Derive, "CKA_DERIVE", false, false),
    rule(AttributeType::SignRecover, "CKA_SIGN_RECOVER", false, false),
];

fn bool_of(a: &Attribute) -> Option<(AttributeType, bool)> {
    let v = match a {
        Attribute::Token(v)
        | Attribute::Private(v)
        | Attribute::Sensitive(v)
        | Attribute::AlwaysSensitive(v)
        | Attribute::Extractable(v)
        | Attribute::NeverExtractable(v)
        | Attribute::Local(v)
        | Attribute::Sign(v)
        | Attribute::Decrypt(v)
        | Attribute::Unwrap(v)
        | Attribute::Derive(v)
        | Attribute::SignRecover(v)
        | Attribute::Verify(v)
        | Attribute::Encrypt(v)
        | Attribute::Wrap(v) => *v,
        _ => return None,
    };
    Some((a.attribute_type(), v))
}

/// Reads the protection attributes of `private` and checks them against the rules; the first
/// violated rule is the error.
pub(crate) fn check_private_key(
    session: &Session,
    private: ObjectHandle,
) -> Result<(), SignerError> {
    let want: Vec<AttributeType> = PRIVATE_KEY_RULES.iter().map(|r| r.attribute).collect();
    let attrs = session
        .get_attributes(private, &want)
        .map_err(to_signer_error)?;
    let found: Vec<(AttributeType, bool)> = attrs.iter().filter_map(bool_of).collect();
    for r in PRIVATE_KEY_RULES {
        let value = found
            .iter()
            .find(|(t, _)| *t == r.attribute)
            .map(|(_, v)| *v);
        let ok = match value {
            Some(v) => v == r.value,
            None => !r.required,
        };
        if !ok {
            return Err(SignerError::KeyNotProtected {
                attribute: r.name,
                expected: r.value,
                found: value,
            });
        }
    }
    Ok(())
}

/// The public key's capability attributes as the token set them (`CKA_VERIFY=false` ...), for
/// the keygen report: they differ between tokens and are not asserted.
pub(crate) fn public_capabilities(session: &Session, public: ObjectHandle) -> Vec<(String, bool)> {
    let want = [
        (AttributeType::Verify, "CKA_VERIFY"),
        (AttributeType::Encrypt, "CKA_ENCRYPT"),
        (AttributeType::Wrap, "CKA_WRAP"),
    ];
    let types: Vec<AttributeType> = want.iter().map(|(t, _)| *t).collect();
    let Ok(attrs) = session.get_attributes(public, &types) else {
        return Vec::new();
    };
    attrs
        .iter()
        .filter_map(bool_of)
        .filter_map(|(t, v)| {
            want.iter()
                .find(|(w, _)| *w == t)
                .map(|(_, name)| ((*name).to_owned(), v))
        })
        .collect()
}

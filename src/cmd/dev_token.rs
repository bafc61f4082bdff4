//! The token under `kubesigner dev`: its own SoftHSM token (the default) or an existing token
//! named by `--signer-uri` (an HSM, the host's TPM through tpm2-pkcs11, ...), and the keys and
//! CA certificate made in it on first run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::cmd::dev::{DevError, set_mode};
use crate::issue;
use crate::kubeconfig::write_private_file;
use crate::signer::{self, Algorithm, Pkcs11Uri, SignerError, TokenSigner, UriOrigin};

/// The token the dev appliance signs with.
#[derive(Debug)]
pub(crate) struct DevToken {
    /// The key's URI, as written into the configuration.
    pub uri_text: String,
    /// The module environment (`[signer.environment]`).
    pub environment: BTreeMap<String, String>,
    /// Whether this is the dev mode's own SoftHSM token.
    pub own_softhsm: bool,
}

/// An existing token named by `--signer-uri` with its `--module-env`: applies the environment
/// (re-executing the process if needed, before any thread or module) and checks the URI (which
/// names the key by `object` or `id`, as every key URI must). Its paths must be absolute: the
/// configuration is read from another directory later.
pub(crate) fn existing(uri_text: &str, module_env: &[String]) -> Result<DevToken, DevError> {
    let environment = signer::parse_env_args(module_env)?;
    signer::apply_module_environment(&environment)?;
    let uri = Pkcs11Uri::parse(uri_text, UriOrigin::CommandLine).map_err(SignerError::from)?;
    let relative = !uri.module_path.is_absolute()
        || uri.pin_source.as_deref().is_some_and(|p| !p.is_absolute());
    if relative {
        return Err(DevError::SignerUri(
            "module-path and pin-source must be absolute paths",
        ));
    }
    Ok(DevToken {
        uri_text: uri_text.to_owned(),
        environment,
        own_softhsm: false,
    })
}

/// On first run: the CA key (made with the appliance's template if the URI's key is missing,
/// and said so), the audit key (likewise), and the self-signed CA certificate, written last.
pub(crate) fn keys_and_ca(
    dir: &Path,
    token: &DevToken,
    subject: &str,
    lifetime: std::time::Duration,
    ca_file: &Path,
) -> Result<(), DevError> {
    let uri =
        Pkcs11Uri::parse(&token.uri_text, UriOrigin::ConfigFile).map_err(SignerError::from)?;
    let key = match TokenSigner::open(&uri, signer::Settings::default()) {
        Ok(key) => key,
        Err(SignerError::KeyNotFound { selector }) => {
            println!(
                "kubesigner dev: no key {selector} in the token; generating the CA key there \
                 (ECDSA P-256, sensitive, never extractable, sign only)"
            );
            signer::keygen(&uri, Algorithm::EcdsaP256, None, None)?;
            TokenSigner::open(&uri, signer::Settings::default())?
        }
        Err(e) => return Err(e.into()),
    };
    let audit_label = crate::config::audit::DEFAULT_KEY_LABEL;
    let audit = match crate::audit::checkpoint::public_key(&key, audit_label) {
        Ok(public) => Some(public),
        Err(SignerError::KeyNotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let subject = issue::ca::parse_subject(subject)?;
    let cert = issue::ca::self_signed_ca(key.as_ref(), subject, SystemTime::now(), lifetime)?;
    let pem = issue::ca::to_pem(&cert)?;
    // The module is initialised once per process: close it before generating the audit key.
    drop(key);
    let audit = match audit {
        Some(public) => public,
        None => {
            println!("kubesigner dev: generating the audit key {audit_label} in the token");
            crate::audit::checkpoint::keygen(&uri, audit_label)?.ok_or_else(|| {
                SignerError::KeyExists {
                    what: format!("object={audit_label}"),
                }
            })?
        }
    };
    let audit_pem =
        der::EncodePem::to_pem(&audit.spki, der::pem::LineEnding::LF).map_err(SignerError::from)?;
    let path = dir.join("audit-key.pem");
    write_private_file(&path, audit_pem.as_bytes()).map_err(crate::cmd::dev::io("write", &path))?;
    set_mode(&path, 0o644)?;
    write_private_file(ca_file, pem.as_bytes()).map_err(crate::cmd::dev::io("write", ca_file))?;
    set_mode(ca_file, 0o644)
}

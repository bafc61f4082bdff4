//! `kubesigner ca` subcommands: `init` (self-signed CA certificate for the token key), `csr`
//! (PKCS#10 for an offline root) and `import` (accept the signed CA certificate and chain).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use der::EncodePem;
use der::pem::LineEnding;

use crate::cmd::hsm::TokenArgs;
use crate::exit;
use crate::issue::ca::{self, CaError};
use crate::signer::{
    Pkcs11Uri, Settings, SignerError, TokenSigner, UriOrigin, apply_module_environment,
    parse_env_args,
};

/// `kubesigner ca` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Write a self-signed CA certificate for the token key (path length 0).
    Init(InitArgs),
    /// Write a PKCS#10 request signed by the token key, for an offline root to sign.
    Csr(CsrArgs),
    /// Check a CA certificate signed for the token key (and its chain) and write the bundle.
    Import(ImportArgs),
}

/// `ca init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The token and key.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Where to write the CA certificate (PEM). Not overwritten if it exists.
    #[arg(long)]
    pub out: PathBuf,
    /// The CA subject (RFC 4514).
    #[arg(long, default_value = "CN=kubernetes")]
    pub subject: String,
    /// Lifetime, e.g. `10y`, `8760h`.
    #[arg(long, default_value = "10y", value_parser = humantime::parse_duration)]
    pub validity: Duration,
}

/// `ca csr` arguments.
#[derive(Debug, Args)]
pub struct CsrArgs {
    /// The token and key.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Where to write the request (PEM). Not overwritten if it exists.
    #[arg(long)]
    pub out: PathBuf,
    /// The CA subject (RFC 4514).
    #[arg(long)]
    pub subject: String,
}

/// `ca import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The token and key.
    #[command(flatten)]
    pub token: TokenArgs,
    /// The signed CA certificate (PEM).
    #[arg(long)]
    pub cert: PathBuf,
    /// The chain above it (PEM), up to the root.
    #[arg(long)]
    pub chain: Option<PathBuf>,
    /// Where to write the CA bundle (CA certificate, then chain). Not overwritten if it exists.
    #[arg(long)]
    pub out: PathBuf,
}

/// Errors of the `ca` subcommands.
#[derive(Debug, thiserror::Error)]
pub enum CaCommandError {
    /// The token could not be used.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// The CA certificate work failed.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The CA key is not in the token (`ca init` never makes it).
    #[error(
        "no private key matches {selector}; create the CA key first with `kubesigner hsm keygen`"
    )]
    NoCaKey {
        /// The key selector, e.g. `object=kubesigner-ca`.
        selector: String,
    },
    /// An output file exists already (never overwritten).
    #[error("{0} exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl CaCommandError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CaCommandError::Signer(e) => e.exit_code(),
            CaCommandError::NoCaKey { .. } | CaCommandError::Exists(_) => exit::USAGE,
            CaCommandError::Ca(CaError::Read { .. }) => exit::NO_INPUT,
            CaCommandError::Ca(CaError::Build(_)) => exit::SOFTWARE,
            CaCommandError::Ca(_) => exit::USAGE,
            CaCommandError::Write { .. } => exit::SOFTWARE,
        }
    }
}

impl CaCommand {
    /// Runs the subcommand; returns the process exit code. Errors are one line on stderr.
    pub fn run(self) -> i32 {
        let result = match self {
            CaCommand::Init(a) => run_init(a),
            CaCommand::Csr(a) => run_csr(a),
            CaCommand::Import(a) => run_import(a),
        };
        match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("kubesigner: {e}");
                e.exit_code()
            }
        }
    }
}

fn open(t: &TokenArgs) -> Result<std::sync::Arc<TokenSigner>, SignerError> {
    let env = parse_env_args(&t.module_env)?;
    apply_module_environment(&env)?;
    let uri = Pkcs11Uri::parse(&t.uri, UriOrigin::CommandLine)?;
    let settings = Settings {
        max_sessions: 1,
        ..Settings::default()
    };
    TokenSigner::open(&uri, settings)
}

fn write_new(path: &Path, text: &str) -> Result<(), CaCommandError> {
    let err = |source| CaCommandError::Write {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

/// `ca init`: everything that can fail happens before anything is written. The CA key must
/// exist (it is never made here); the audit key is made only when missing, and said so first.
/// `--out` and `audit-key.pem` are written last, together (the second failing removes the
/// first), so a failure leaves no CA certificate behind.
fn run_init(a: InitArgs) -> Result<(), CaCommandError> {
    let subject = ca::parse_subject(&a.subject)?;
    if a.out.exists() {
        return Err(CaCommandError::Exists(a.out.clone()));
    }
    let signer = open(&a.token).map_err(no_ca_key)?;
    let cert = ca::self_signed_ca(signer.as_ref(), subject, SystemTime::now(), a.validity)?;
    let cert_pem = ca::to_pem(&cert)?;
    let label = crate::config::audit::DEFAULT_KEY_LABEL;
    let found = match crate::audit::checkpoint::public_key(&signer, label) {
        Ok(public) => Some(public),
        Err(SignerError::KeyNotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    // The module is initialised once per process: close it before generating the audit key.
    drop(signer);
    let audit = match found {
        Some(public) => public,
        None => {
            eprintln!(
                "kubesigner: no audit key {label} in the token; generating it (ECDSA P-256, sign only)"
            );
            let uri = Pkcs11Uri::parse(&a.token.uri, UriOrigin::CommandLine)
                .map_err(SignerError::from)?;
            crate::audit::checkpoint::keygen(&uri, label)?.ok_or_else(|| {
                SignerError::KeyExists {
                    what: format!("object={label}"),
                }
            })?
        }
    };
    let audit_path = a.out.with_file_name("audit-key.pem");
    let audit_pem = der::EncodePem::to_pem(&audit.spki, LineEnding::LF)
        .map_err(|e| CaError::Build(e.to_string()))?;
    let wrote_audit = match std::fs::read_to_string(&audit_path) {
        Ok(existing) if existing == audit_pem => false,
        Ok(_) => return Err(CaCommandError::Exists(audit_path)),
        Err(_) => {
            write_new(&audit_path, &audit_pem)?;
            true
        }
    };
    if let Err(e) = write_new(&a.out, &cert_pem) {
        if wrote_audit {
            let _ = std::fs::remove_file(&audit_path);
        }
        return Err(e);
    }
    println!("wrote CA certificate {}", a.out.display());
    if wrote_audit {
        println!("wrote audit public key {label}: {}", audit_path.display());
    }
    Ok(())
}

/// A missing CA key names the command that makes one.
fn no_ca_key(e: SignerError) -> CaCommandError {
    match e {
        SignerError::KeyNotFound { selector } => CaCommandError::NoCaKey { selector },
        e => CaCommandError::Signer(e),
    }
}

fn run_csr(a: CsrArgs) -> Result<(), CaCommandError> {
    let subject = ca::parse_subject(&a.subject)?;
    let signer = open(&a.token)?;
    let req = ca::ca_request(signer.as_ref(), subject)?;
    let pem = req
        .to_pem(LineEnding::LF)
        .map_err(|e| CaError::Build(e.to_string()))?;
    write_new(&a.out, &pem)?;
    println!("wrote CA certificate request {}", a.out.display());
    Ok(())
}

fn run_import(a: ImportArgs) -> Result<(), CaCommandError> {
    let read = ca::read_bounded;
    let cert = read(&a.cert)?;
    let chain = a.chain.as_deref().map(read).transpose()?;
    let signer = open(&a.token)?;
    let bundle = ca::import(signer.as_ref(), &cert, chain.as_deref())?;
    write_new(&a.out, &bundle.to_pem()?)?;
    println!("wrote CA bundle {}", a.out.display());
    Ok(())
}

//! `kubesigner hsm` subcommands: `keygen` (a CA key in the token, explicit template) and
//! `check` (the operator's smoke test: open, log in, find the key, sign, verify).

use clap::{Args, Subcommand, ValueEnum};
use der::EncodePem;
use der::pem::LineEnding;

use crate::signer::{
    Algorithm, Pkcs11Uri, Settings, SignKey, SignerError, TokenSigner, UriOrigin,
    apply_module_environment, keygen, parse_env_args,
};

/// `kubesigner hsm` subcommands.
#[derive(Debug, Subcommand)]
pub enum HsmCommand {
    /// Generate a signing key pair in the token (sensitive, non-extractable, sign only).
    Keygen(KeygenArgs),
    /// Open the token, log in, find the key, sign a test message and verify it.
    Check(CheckArgs),
}

/// Arguments shared by the `hsm` subcommands.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// RFC 7512 URI of the key, e.g.
    /// `pkcs11:token=ca;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/kubesigner/pin`.
    #[arg(long)]
    pub uri: String,
    /// Environment the PKCS#11 module needs (e.g. `SOFTHSM2_CONF=/path/softhsm2.conf`);
    /// repeatable. Applied by re-executing the process before the module loads.
    #[arg(long = "module-env", value_name = "KEY=VALUE")]
    pub module_env: Vec<String>,
}

/// `hsm keygen` arguments.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The token and key.
    #[command(flatten)]
    pub token: TokenArgs,
    /// Key algorithm (required unless --audit).
    #[arg(long, value_enum, required_unless_present = "audit")]
    pub algorithm: Option<AlgorithmArg>,
    /// Generate the audit key instead (ECDSA P-256, label `kubesigner-audit` unless --label,
    /// a fresh CKA_ID) in the token of the CA key the URI names; it signs the audit
    /// checkpoints. The public key is printed (save it as `audit-key.pem`).
    #[arg(long, conflicts_with_all = ["algorithm", "id"])]
    pub audit: bool,
    /// CKA_ID in hex (default: the URI's id, else 16 random bytes).
    #[arg(long, value_parser = parse_hex_id)]
    pub id: Option<HexId>,
    /// CKA_LABEL (default: the URI's object, else "kubesigner-ca").
    #[arg(long)]
    pub label: Option<String>,
}

/// `hsm check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The token and key.
    #[command(flatten)]
    pub token: TokenArgs,
}

/// A CKA_ID given in hex.
#[derive(Debug, Clone)]
pub struct HexId(pub Vec<u8>);

/// Longest CKA_ID accepted (bytes; real ids are 1-32 bytes).
const MAX_ID_LEN: usize = 64;

fn parse_hex_id(s: &str) -> Result<HexId, String> {
    match hex::decode(s) {
        Ok(v) if !v.is_empty() && v.len() <= MAX_ID_LEN => Ok(HexId(v)),
        _ => Err(format!("expected 1 to {MAX_ID_LEN} bytes of hex")),
    }
}

/// Key algorithm names on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    /// ECDSA P-256.
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
    /// RSA 2048.
    #[value(name = "rsa-2048")]
    Rsa2048,
    /// RSA 3072.
    #[value(name = "rsa-3072")]
    Rsa3072,
    /// RSA 4096.
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl From<AlgorithmArg> for Algorithm {
    fn from(a: AlgorithmArg) -> Algorithm {
        match a {
            AlgorithmArg::EcdsaP256 => Algorithm::EcdsaP256,
            AlgorithmArg::EcdsaP384 => Algorithm::EcdsaP384,
            AlgorithmArg::Rsa2048 => Algorithm::Rsa2048,
            AlgorithmArg::Rsa3072 => Algorithm::Rsa3072,
            AlgorithmArg::Rsa4096 => Algorithm::Rsa4096,
        }
    }
}

impl HsmCommand {
    /// Runs the subcommand; returns the process exit code. Errors are one line on stderr.
    pub fn run(self) -> i32 {
        let result = match self {
            HsmCommand::Keygen(a) => run_keygen(a),
            HsmCommand::Check(a) => run_check(a),
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

/// Applies the module environment (may re-exec) and parses the URI (command-line origin).
fn prepare(t: &TokenArgs) -> Result<Pkcs11Uri, SignerError> {
    let env = parse_env_args(&t.module_env)?;
    apply_module_environment(&env)?;
    Ok(Pkcs11Uri::parse(&t.uri, UriOrigin::CommandLine)?)
}

fn run_keygen(a: KeygenArgs) -> Result<(), SignerError> {
    let uri = prepare(&a.token)?;
    if a.audit {
        let label = a
            .label
            .unwrap_or_else(|| crate::config::audit::DEFAULT_KEY_LABEL.to_owned());
        let public = crate::audit::checkpoint::keygen(&uri, &label)?.ok_or_else(|| {
            SignerError::KeyExists {
                what: format!("object={label}"),
            }
        })?;
        println!("algorithm: {}", public.algorithm.name());
        println!("label: {label}");
        println!("public key sha256: {}", public.fingerprint()?);
        print!("{}", public.spki.to_pem(LineEnding::LF)?);
        return Ok(());
    }
    let algorithm = a.algorithm.unwrap_or(AlgorithmArg::EcdsaP256);
    let key = keygen(&uri, algorithm.into(), a.id.map(|h| h.0), a.label)?;
    println!("algorithm: {}", key.public.algorithm.name());
    println!("id: {}", hex::encode(&key.id));
    println!("label: {}", key.label);
    println!(
        "private key: sensitive, never extractable, generated in the token, sign only (read back)"
    );
    if !key.public_capabilities.is_empty() {
        let caps: Vec<String> = key
            .public_capabilities
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!("public key capabilities: {}", caps.join(" "));
    }
    println!("public key sha256: {}", key.public.fingerprint()?);
    print!("{}", key.public.spki.to_pem(LineEnding::LF)?);
    Ok(())
}

fn run_check(a: CheckArgs) -> Result<(), SignerError> {
    let uri = prepare(&a.token)?;
    let settings = Settings {
        max_sessions: 1,
        ..Settings::default()
    };
    let signer = TokenSigner::open(&uri, settings)?;
    let message = b"kubesigner hsm check: test message";
    // `sign` verifies with the cached public key (aws-lc-rs) before returning.
    let sig = signer.sign(message)?;
    println!("algorithm: {}", signer.algorithm().name());
    println!("public key sha256: {}", signer.fingerprint()?);
    println!("test signature: {} bytes, verified", sig.len());
    print!("{}", signer.public_key().to_pem(LineEnding::LF)?);
    Ok(())
}

//! `kubesigner dev`: the embedded default. On first run it creates, in one directory, a SoftHSM
//! token (`kubesigner-dev`, random PIN in `DIR/pin`), a P-256 CA key in it, the self-signed CA
//! certificate `DIR/ca.crt`, and writes `DIR/kubesigner.toml` — a production configuration,
//! the same one `kubesigner serve --config DIR/kubesigner.toml` runs. Every run then issues an
//! admin client certificate (`DIR/admin.kubeconfig`), keeps a bootstrap token valid
//! (`DIR/bootstrap.kubeconfig`) and serves. Re-running reuses the token, key and CA.
//!
//! With `--signer-uri URI [--module-env K=V]…` the appliance uses an existing token instead
//! (an HSM, the host's TPM through tpm2-pkcs11): the CA key named by the URI is made there
//! with the appliance's template if it is missing; everything else is the same.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::authn::bootstrap::{BootstrapTokenId, BootstrapTokens};
use crate::cmd::dev_token::{self, DevToken};
use crate::cmd::serve::ServeArgs;
use crate::config::Config;
use crate::exit;
use crate::issue::{self, CaBundle, Issuer};
use crate::kubeconfig::{Credential, Kubeconfig, write_private_file};
use crate::signer::{self, Pkcs11Uri, TokenSigner, UriOrigin};

/// Token label of the dev token.
const TOKEN_LABEL: &str = "kubesigner-dev";
/// Label of the CA key in the dev token.
const KEY_LABEL: &str = "kubesigner-ca";
/// Subject of the dev CA.
const CA_SUBJECT: &str = "CN=kubesigner-dev-ca,O=kubesigner";
/// Lifetime of the dev CA (ten years, like kubeadm's CA).
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Lifetime of the admin client certificate written on each run.
const ADMIN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Lifetime of the dev bootstrap token; a new one is made when less than a day is left.
const BOOTSTRAP_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const BOOTSTRAP_MIN_LEFT: Duration = Duration::from_secs(24 * 3600);
/// Length of the generated PINs (characters from [A-Za-z0-9], ≈ 143 bits).
const PIN_LEN: usize = 24;

/// Where SoftHSM's module is on common systems.
const SOFTHSM_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

/// Arguments of `kubesigner dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Directory for the dev token, CA, configuration, kubeconfigs and state.
    #[arg(long, default_value = ".kubesigner-dev")]
    pub dir: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// The SoftHSM PKCS#11 module (default: found in the usual places).
    #[arg(long, conflicts_with = "signer_uri")]
    pub module: Option<PathBuf>,
    /// Use this existing token and key instead of a dev SoftHSM token (RFC 7512 URI with
    /// absolute module-path and pin-source, naming the key by object= or id=). The CA key is
    /// generated there with the appliance's template if it is missing.
    #[arg(long, value_name = "URI")]
    pub signer_uri: Option<String>,
    /// Environment the `--signer-uri` module needs (e.g. `TPM2_PKCS11_TCTI=device:/dev/tpmrm0`);
    /// repeatable. Written to `[signer.environment]`.
    #[arg(long = "module-env", value_name = "KEY=VALUE", requires = "signer_uri")]
    pub module_env: Vec<String>,
    /// Set up (token, CA, configuration, kubeconfigs) and exit without serving.
    #[arg(long)]
    pub setup_only: bool,
    /// External-signing mode (`[server] external_signing`): store and serve CSRs and Leases,
    /// never approve or sign; also writes `controller.kubeconfig` (static token user
    /// `system:serviceaccount:kubesigner:kubesigner`) for `kubesigner controller`.
    #[arg(long)]
    pub external_signing: bool,
    /// RBAC manifest for external-signing mode (repeatable; `[auth] rbac_manifests`), e.g.
    /// deploy/rbac.yaml.
    #[arg(long = "rbac-manifest", requires = "external_signing")]
    pub rbac_manifests: Vec<PathBuf>,
}

/// The controller's user in external-signing mode (the ServiceAccount of deploy/rbac.yaml).
pub const CONTROLLER_USER: &str = "system:serviceaccount:kubesigner:kubesigner";
/// Its groups, as kube-apiserver gives a ServiceAccount token.
const CONTROLLER_GROUPS: &str =
    "system:serviceaccounts,system:serviceaccounts:kubesigner,system:authenticated";

/// Why the dev setup failed.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A file or directory could not be made.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No SoftHSM module.
    #[error("SoftHSM's PKCS#11 module not found (install softhsm2, or pass --module)")]
    NoModule,
    /// The module environment could not be applied.
    #[error(transparent)]
    Env(#[from] signer::EnvError),
    /// The token failed.
    #[error(transparent)]
    Signer(#[from] signer::SignerError),
    /// The CA certificate failed.
    #[error(transparent)]
    Ca(#[from] issue::CaError),
    /// Issuing the admin certificate failed.
    #[error(transparent)]
    Issue(#[from] issue::IssueError),
    /// Bootstrap token store.
    #[error(transparent)]
    Token(#[from] crate::authn::AuthnError),
    /// Writing a kubeconfig failed.
    #[error(transparent)]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
    /// The generated configuration does not load (a bug).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store (which holds the audit log token changes go into) could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A CA-key signature could not be recorded in the audit log.
    #[error(transparent)]
    Audit(#[from] crate::audit::signature::SignatureAuditError),
    /// `--signer-uri` is not usable for the dev appliance.
    #[error("--signer-uri: {0}")]
    SignerUri(&'static str),
    /// A path is not valid UTF-8 (it must go into a URI and a TOML file).
    #[error("path {0} is not UTF-8")]
    NonUtf8(PathBuf),
}

impl DevError {
    fn exit_code(&self) -> i32 {
        match self {
            DevError::Signer(e) => e.exit_code(),
            DevError::NoModule
            | DevError::NonUtf8(_)
            | DevError::Config(_)
            | DevError::SignerUri(_) => exit::USAGE,
            _ => exit::UNAVAILABLE,
        }
    }
}

pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DevError {
    let path = path.to_owned();
    move |source| DevError::Io { what, path, source }
}

fn utf8(p: &Path) -> Result<&str, DevError> {
    p.to_str().ok_or_else(|| DevError::NonUtf8(p.to_owned()))
}

impl DevArgs {
    /// Sets up, then serves the generated configuration; returns the exit code.
    pub fn run(self) -> i32 {
        match self.setup() {
            Ok(config) if self.setup_only => {
                println!(
                    "kubesigner dev: set up; serve with: kubesigner serve --config {}",
                    config.display()
                );
                0
            }
            Ok(config) => ServeArgs::with_config(config).run(),
            Err(e) => {
                eprintln!("kubesigner dev: {e}");
                e.exit_code()
            }
        }
    }

    /// Creates what is missing and writes the configuration and kubeconfigs; returns the
    /// configuration file's path.
    fn setup(&self) -> Result<PathBuf, DevError> {
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let dir = std::fs::canonicalize(&self.dir).map_err(io("resolve", &self.dir))?;
        set_mode(&dir, 0o700)?;
        let token = match &self.signer_uri {
            Some(uri) => dev_token::existing(uri, &self.module_env)?,
            None => self.softhsm_token(&dir)?,
        };
        let ca_file = dir.join("ca.crt");
        let created_ca = !ca_file.exists();
        if created_ca {
            if token.own_softhsm {
                self.init_softhsm_token(&dir, &token)?;
            }
            dev_token::keys_and_ca(&dir, &token, CA_SUBJECT, CA_LIFETIME, &ca_file)?;
        }
        let uri_text = token.uri_text.as_str();
        let config = dir.join("kubesigner.toml");
        let server = format!("https://{}", self.listen);
        let ca_pem = std::fs::read_to_string(&ca_file).map_err(io("read", &ca_file))?;
        let mut text = config_text(self.listen, uri_text, &token.environment);
        self.add_external(&mut text, &dir, &server, &ca_pem)?;
        write_private_file(&config, text.as_bytes()).map_err(io("write", &config))?;
        let cfg = Config::load(&config)?;
        if created_ca {
            use crate::audit::signature::record_pem;
            record_pem(
                &cfg.data_dir,
                crate::audit::Kind::CaSelfSigned,
                "ca",
                &ca_pem,
            )?;
        }

        self.write_admin_kubeconfig(&dir, &cfg, uri_text, &server, &ca_pem)?;
        write_bootstrap_kubeconfig(&dir, &cfg.data_dir, &server, &ca_pem)?;
        println!("kubesigner dev: directory      {}", dir.display());
        println!("kubesigner dev: configuration  {}", config.display());
        println!("kubesigner dev: CA certificate {}", ca_file.display());
        println!(
            "kubesigner dev: admin          KUBECONFIG={}",
            dir.join("admin.kubeconfig").display()
        );
        println!(
            "kubesigner dev: bootstrap      {}",
            dir.join("bootstrap.kubeconfig").display()
        );
        Ok(config)
    }

    /// With `--external-signing`: the mode's keys in the configuration text, and the
    /// controller's credentials.
    fn add_external(
        &self,
        text: &mut String,
        dir: &Path,
        server: &str,
        ca_pem: &str,
    ) -> Result<(), DevError> {
        if self.external_signing {
            let auth = self.external_config(dir, server, ca_pem)?;
            *text = text.replacen("[server]\n", "[server]\nexternal_signing = true\n", 1);
            text.push_str(&auth);
        }
        Ok(())
    }

    /// External-signing mode: keeps the controller's static token in `DIR/tokens.csv`, writes
    /// `DIR/controller.kubeconfig`, and returns the mode's `[auth]` section.
    fn external_config(&self, dir: &Path, server: &str, ca_pem: &str) -> Result<String, DevError> {
        let tokens = dir.join("tokens.csv");
        let existing = std::fs::read_to_string(&tokens)
            .ok()
            .map(Zeroizing::new)
            .and_then(|t| {
                let line = t.lines().find(|l| l.contains(CONTROLLER_USER))?;
                let token = line.split(',').next()?.trim();
                (!token.is_empty()).then(|| Zeroizing::new(token.to_owned()))
            });
        let token = match existing {
            Some(t) => t,
            None => {
                let t = random_pin()?;
                let line = Zeroizing::new(format!(
                    "{},{CONTROLLER_USER},kubesigner-controller,\"{CONTROLLER_GROUPS}\"\n",
                    t.as_str()
                ));
                write_private_file(&tokens, line.as_bytes()).map_err(io("write", &tokens))?;
                t
            }
        };
        Kubeconfig {
            server: server.to_owned(),
            ca_pem: ca_pem.to_owned(),
            user_name: CONTROLLER_USER.to_owned(),
            credential: Credential::Token(SecretString::from(token.as_str())),
        }
        .write(&dir.join("controller.kubeconfig"))?;
        let esc = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut manifests = Vec::new();
        for m in &self.rbac_manifests {
            let abs = std::fs::canonicalize(m).map_err(io("resolve", m))?;
            manifests.push(esc(utf8(&abs)?));
        }
        println!(
            "kubesigner dev: controller     KUBECONFIG={}",
            dir.join("controller.kubeconfig").display()
        );
        Ok(format!(
            "\n# kubesigner dev --external-signing: CSRs are neither approved nor signed here.\n\
             [auth]\ntoken_auth_file = \"tokens.csv\"\nrbac_manifests = [{}]\n",
            manifests.join(", ")
        ))
    }

    /// The dev mode's own SoftHSM token in `DIR/tokens` (its configuration written, its
    /// environment applied by re-executing when not yet set).
    fn softhsm_token(&self, dir: &Path) -> Result<DevToken, DevError> {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).map_err(io("create", &tokens))?;
        let softhsm_conf = dir.join("softhsm2.conf");
        if !softhsm_conf.exists() {
            let text = format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                utf8(&tokens)?
            );
            write_private_file(&softhsm_conf, text.as_bytes())
                .map_err(io("write", &softhsm_conf))?;
        }
        let environment: BTreeMap<String, String> =
            [("SOFTHSM2_CONF".to_owned(), utf8(&softhsm_conf)?.to_owned())].into();
        // Replaces this process with itself when SOFTHSM2_CONF is not yet set (no threads yet).
        signer::apply_module_environment(&environment)?;
        let module = match &self.module {
            Some(m) => m.clone(),
            None => SOFTHSM_MODULES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or(DevError::NoModule)?,
        };
        let uri_text = format!(
            "pkcs11:token={TOKEN_LABEL};object={KEY_LABEL}?module-path={}&pin-source=file:{}",
            utf8(&module)?,
            utf8(&dir.join("pin"))?
        );
        Ok(DevToken {
            uri_text,
            environment,
            own_softhsm: true,
        })
    }

    /// Initialises the dev SoftHSM token (random PINs in `DIR/pin`, `DIR/so-pin`) unless the
    /// token directory already holds one.
    fn init_softhsm_token(&self, dir: &Path, token: &DevToken) -> Result<(), DevError> {
        let token_exists = std::fs::read_dir(dir.join("tokens"))
            .map_err(io("read", &dir.join("tokens")))?
            .next()
            .is_some();
        if token_exists {
            return Ok(());
        }
        let uri = Pkcs11Uri::parse(&token.uri_text, UriOrigin::ConfigFile)
            .map_err(signer::SignerError::from)?;
        let (pin_file, so_pin_file) = (dir.join("pin"), dir.join("so-pin"));
        let pin = random_pin()?;
        let so_pin = random_pin()?;
        write_private_file(&pin_file, pin.as_bytes()).map_err(io("write", &pin_file))?;
        write_private_file(&so_pin_file, so_pin.as_bytes()).map_err(io("write", &so_pin_file))?;
        signer::init_token(
            &uri.module_path,
            TOKEN_LABEL,
            &SecretString::from(so_pin.as_str()),
            &SecretString::from(pin.as_str()),
        )?;
        Ok(())
    }

    fn write_admin_kubeconfig(
        &self,
        dir: &Path,
        cfg: &crate::config::Config,
        uri_text: &str,
        server: &str,
        ca_pem: &str,
    ) -> Result<(), DevError> {
        let uri =
            Pkcs11Uri::parse(uri_text, UriOrigin::ConfigFile).map_err(signer::SignerError::from)?;
        let key = TokenSigner::open(&uri, signer::Settings::default())?;
        let bundle = CaBundle::load(&cfg.ca.cert_file)?;
        let issuer = Issuer::new(
            bundle,
            Arc::clone(&key) as Arc<dyn signer::SignKey>,
            cfg.issuance.clone(),
        )?;
        let admin = issue::admin_client_certificate(&issuer, SystemTime::now(), ADMIN_TTL)?;
        crate::audit::signature::record_pem(
            &cfg.data_dir,
            crate::audit::Kind::AdminCertificate,
            issue::ADMIN_COMMON_NAME,
            &admin.certificate.pem_chain,
        )?;
        drop(issuer);
        drop(key);
        Kubeconfig {
            server: server.to_owned(),
            ca_pem: ca_pem.to_owned(),
            user_name: issue::ADMIN_COMMON_NAME.to_owned(),
            credential: Credential::ClientCertificate {
                cert_pem: admin.certificate.pem_chain.clone(),
                key_pem: admin.key_pem,
            },
        }
        .write(&dir.join("admin.kubeconfig"))?;
        Ok(())
    }
}

/// Keeps a bootstrap token with at least a day left in `DIR/bootstrap-token` (0600) and
/// writes `DIR/bootstrap.kubeconfig` for it.
fn write_bootstrap_kubeconfig(
    dir: &Path,
    data_dir: &Path,
    server: &str,
    ca_pem: &str,
) -> Result<(), DevError> {
    std::fs::create_dir_all(data_dir).map_err(io("create", data_dir))?;
    set_mode(data_dir, 0o700)?;
    // The store's schema first: token changes are recorded in its audit log.
    crate::store::Store::open(data_dir)?;
    let tokens = BootstrapTokens::open(&data_dir.join(crate::authn::DB_FILE_NAME))?;
    let token_file = dir.join("bootstrap-token");
    let now = SystemTime::now();
    let existing = std::fs::read_to_string(&token_file).ok().and_then(|t| {
        let t = Zeroizing::new(t);
        let id = BootstrapTokenId::parse(t.trim().split('.').next()?)?;
        let records = tokens.list().ok()?;
        let rec = records.iter().find(|r| r.id == id)?;
        (rec.expires > now + BOOTSTRAP_MIN_LEFT).then(|| SecretString::from(t.trim()))
    });
    let token = match existing {
        Some(t) => t,
        None => {
            let (_, t) = tokens.create(
                BOOTSTRAP_TTL,
                Vec::new(),
                "kubesigner dev bootstrap token".to_owned(),
                Vec::new(),
                now,
            )?;
            use secrecy::ExposeSecret;
            write_private_file(&token_file, t.expose_secret().as_bytes())
                .map_err(io("write", &token_file))?;
            t
        }
    };
    Kubeconfig {
        server: server.to_owned(),
        ca_pem: ca_pem.to_owned(),
        user_name: "kubelet-bootstrap".to_owned(),
        credential: Credential::Token(token),
    }
    .write(&dir.join("bootstrap.kubeconfig"))?;
    Ok(())
}

/// The generated configuration: a production config for this directory.
fn config_text(listen: SocketAddr, uri: &str, environment: &BTreeMap<String, String>) -> String {
    let esc = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let env: String = environment
        .iter()
        .map(|(k, v)| format!("{k} = {}\n", esc(v)))
        .collect();
    format!(
        "# Generated by `kubesigner dev`; rewritten on every dev run. `kubesigner serve --config\n\
         # <this file>` runs the same appliance. Every key is documented in\n\
         # systemd/kubesigner.example.toml. Relative paths are relative to this file.\n\
         data_dir = \"state\"\n\n\
         [server]\nlisten = {listen}\n\n\
         [signer]\n# The CA key in the token; the PIN is read from the pin-source file.\n\
         key = {uri}\n\n\
         [signer.environment]\n{env}\n\
         [ca]\ncert_file = \"ca.crt\"\n",
        listen = esc(&listen.to_string()),
        uri = esc(uri),
    )
}

fn random_pin() -> Result<Zeroizing<String>, DevError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut pin = Zeroizing::new(String::with_capacity(PIN_LEN));
    while pin.len() < PIN_LEN {
        let mut buf = Zeroizing::new([0u8; 64]);
        aws_lc_rs::rand::fill(buf.as_mut()).map_err(|_| DevError::Io {
            what: "random",
            path: PathBuf::new(),
            source: std::io::Error::other("system random number generator failed"),
        })?;
        // Rejection sampling: 248 = 4 × 62, so keeping bytes below it is unbiased.
        for b in buf.iter().filter(|b| **b < 248) {
            if pin.len() < PIN_LEN {
                pin.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
            }
        }
    }
    Ok(pin)
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), DevError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

#[cfg(test)]
mod tests;

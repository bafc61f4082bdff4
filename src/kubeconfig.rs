//! Writing client kubeconfig files (admin and bootstrap credentials made by `kubesigner dev`,
//! node kubeconfigs). The YAML is produced from a fixed template: every value written is either
//! base64, a URL we built, or a token from a fixed alphabet, so no YAML escaping is needed, and
//! each is checked before it is written.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

mod read;
pub use read::*;

/// How the kubeconfig's user authenticates.
pub enum Credential {
    /// A client certificate and its private key (PEM), embedded as data.
    ClientCertificate {
        /// PEM certificate chain.
        cert_pem: String,
        /// PEM private key (zeroized on drop).
        key_pem: Zeroizing<String>,
    },
    /// A bearer token (bootstrap or static).
    Token(SecretString),
}

/// Errors writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// A value would need YAML escaping (never expected for values we generate).
    #[error("refusing to write kubeconfig: {field} contains characters outside the safe set")]
    UnsafeValue {
        /// Which field.
        field: &'static str,
    },
    /// The file could not be written.
    #[error("cannot write kubeconfig {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A single-cluster, single-user kubeconfig.
pub struct Kubeconfig {
    /// API server URL, e.g. `https://127.0.0.1:6443`.
    pub server: String,
    /// PEM CA bundle the client trusts.
    pub ca_pem: String,
    /// Name used for the user entry (e.g. `kubesigner-admin`, `kubelet-bootstrap`).
    pub user_name: String,
    /// The credential.
    pub credential: Credential,
}

fn safe(field: &'static str, value: &str) -> Result<(), KubeconfigError> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:/[]@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(KubeconfigError::UnsafeValue { field })
    }
}

impl Kubeconfig {
    /// Renders the YAML text (contains secrets: zeroized on drop).
    pub fn render(&self) -> Result<Zeroizing<String>, KubeconfigError> {
        safe("server", &self.server)?;
        safe("user name", &self.user_name)?;
        let user = match &self.credential {
            Credential::ClientCertificate { cert_pem, key_pem } => Zeroizing::new(format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                STANDARD.encode(cert_pem),
                STANDARD.encode(key_pem.as_bytes())
            )),
            Credential::Token(token) => {
                safe("token", token.expose_secret())?;
                Zeroizing::new(format!("    token: {}\n", token.expose_secret()))
            }
        };
        Ok(Zeroizing::new(format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesigner\n  cluster:\n    \
             server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {name}\n  \
             user:\n{user}contexts:\n- name: {name}@kubesigner\n  context:\n    cluster: kubesigner\n    \
             user: {name}\ncurrent-context: {name}@kubesigner\npreferences: {{}}\n",
            server = self.server,
            ca = STANDARD.encode(&self.ca_pem),
            name = self.user_name,
            user = user.as_str(),
        )))
    }

    /// Writes the kubeconfig to `path` atomically (temporary file, fsync, rename), mode 0600.
    pub fn write(&self, path: &Path) -> Result<(), KubeconfigError> {
        let text = self.render()?;
        write_private_file(path, text.as_bytes()).map_err(|source| KubeconfigError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file in the same directory,
/// fsync, rename, fsync of the directory. A crash leaves either the old file or the new one.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;

//! The cert dir, laid out as the kubelet's certificate store (client-go `certificate_store.go`):
//! `<prefix>-<YYYY-MM-DD-HH-MM-SS>.pem` files holding the certificate chain followed by the
//! key (mode 0600), and the `<prefix>-current.pem` symlink re-pointed atomically through
//! `<prefix>-updated.pem`. Every write is temporary file + fsync + rename; a failed update
//! removes what it wrote, so the directory never holds a half-written or dangling file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use der::{Decode, Encode};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::key::{KeyError, NodeKey, pem_blocks};
use crate::kubeconfig::write_private_file;

/// How many timestamped files of one kind are kept (the current one included). The kubelet
/// keeps every old file; a bound keeps a long-running node's cert dir from growing forever,
/// and four old pairs are plenty to step back by hand.
pub const KEEP_FILES: usize = 5;
/// Largest `*.pem` file read back: a chain of a few certificates plus a key is a few KiB.
const MAX_PEM_BYTES: u64 = 256 * 1024;
/// The bootstrap path's pending key (reference §4.1), reused across restarts so a re-sent
/// CSR gets the same `node-csr-` name and the server's 409 leads to the existing CSR.
pub const PENDING_CLIENT_KEY: &str = "kubelet-client.key.tmp";

/// Errors in the cert dir.
#[derive(Debug, thiserror::Error)]
pub enum CertDirError {
    /// A file system operation failed.
    #[error("cert dir: cannot {op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A stored file holds no parsable certificate.
    #[error("cert dir: {path} holds no valid certificate")]
    BadCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key is unusable.
    #[error("cert dir: {0}")]
    Key(#[from] KeyError),
    /// The certificate's public key is not the key it is stored with.
    #[error("the issued certificate does not match the private key")]
    KeyMismatch,
    /// A file is larger than a certificate file can be.
    #[error("cert dir: {path} is too large")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CertDirError + 'a {
    move |source| CertDirError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A certificate chain and its key, as stored.
pub struct StoredPair {
    /// PEM certificate chain (leaf first).
    pub cert_pem: String,
    /// The leaf.
    pub leaf: Certificate,
    /// The key.
    pub key: NodeKey,
}

impl StoredPair {
    /// NotBefore and NotAfter of the leaf.
    pub fn validity(&self) -> (SystemTime, SystemTime) {
        let v = self.leaf.tbs_certificate().validity();
        (v.not_before.to_system_time(), v.not_after.to_system_time())
    }

    /// Whether the leaf is still valid at `now` (the kubelet's test is NotAfter only).
    pub fn valid_at(&self, now: SystemTime) -> bool {
        now < self.validity().1
    }
}

/// Parses the certificate blocks of PEM text (other blocks, like the key, are skipped).
pub fn parse_chain(pem: &str) -> Vec<Certificate> {
    pem_blocks(pem)
        .filter_map(|b| der::pem::decode_vec(b.as_bytes()).ok())
        .filter(|(label, _)| *label == "CERTIFICATE")
        .filter_map(|(_, der)| Certificate::from_der(&der).ok())
        .collect()
}

/// Whether `cert` certifies `key`'s public key.
pub fn certifies(cert: &Certificate, key: &NodeKey) -> Result<bool, CertDirError> {
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|_| CertDirError::KeyMismatch)?;
    Ok(spki == key.spki_der()?)
}

/// One kind of pair (client or serving) in one cert dir.
#[derive(Clone, Debug)]
pub struct CertStore {
    dir: PathBuf,
    prefix: &'static str,
}

impl CertStore {
    /// The store for files named `<prefix>-…` in `dir`.
    pub fn new(dir: &Path, prefix: &'static str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            prefix,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<prefix>-current.pem`.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}-current.pem", self.prefix))
    }

    /// Creates the directory (0700) if missing.
    pub fn ensure_dir(&self) -> Result<(), CertDirError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io("create", &self.dir))
    }

    /// The current pair, or `None` when there is none or it does not parse (the kubelet
    /// then bootstraps again).
    pub fn load_current(&self) -> Option<StoredPair> {
        let path = self.current_path();
        let text = read_bounded(&path).ok()?;
        let mut chain = parse_chain(&text);
        if chain.is_empty() {
            return None;
        }
        let leaf = chain.remove(0);
        let key = NodeKey::from_pem(text.as_bytes()).ok()?;
        if !certifies(&leaf, &key).ok()? {
            return None;
        }
        let cert_pem = pem_blocks(&text)
            .filter(|b| b.starts_with("-----BEGIN CERTIFICATE-----"))
            .map(|b| format!("{b}\n"))
            .collect();
        Some(StoredPair {
            cert_pem,
            leaf,
            key,
        })
    }

    /// Stores a new pair: writes `<prefix>-<timestamp>.pem` (chain then key, 0600) and
    /// re-points `<prefix>-current.pem` atomically; prunes old files. Returns the new file.
    pub fn update(
        &self,
        cert_pem: &str,
        key: &NodeKey,
        now: SystemTime,
    ) -> Result<PathBuf, CertDirError> {
        let chain = parse_chain(cert_pem);
        let leaf = chain.first().ok_or_else(|| CertDirError::BadCertificate {
            path: self.current_path(),
        })?;
        if !certifies(leaf, key)? {
            return Err(CertDirError::KeyMismatch);
        }
        self.ensure_dir()?;
        let name = format!("{}-{}.pem", self.prefix, timestamp(now));
        let path = self.dir.join(&name);
        let key_pem = key.to_pem()?;
        let mut body = Zeroizing::new(String::with_capacity(cert_pem.len() + key_pem.len() + 1));
        body.push_str(cert_pem.trim_end());
        body.push('\n');
        body.push_str(&key_pem);
        write_private_file(&path, body.as_bytes()).map_err(io("write", &path))?;
        if let Err(e) = self.point_current_at(&name) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        if let Err(e) = self.prune(KEEP_FILES) {
            tracing::warn!(error = %e, "cert dir: could not remove old certificate files");
        }
        Ok(path)
    }

    fn point_current_at(&self, name: &str) -> Result<(), CertDirError> {
        let updated = self.dir.join(format!("{}-updated.pem", self.prefix));
        match std::fs::remove_file(&updated) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &updated)(e)),
        }
        std::os::unix::fs::symlink(name, &updated).map_err(io("symlink", &updated))?;
        let current = self.current_path();
        if let Err(e) = std::fs::rename(&updated, &current) {
            let _ = std::fs::remove_file(&updated);
            return Err(io("rename", &current)(e));
        }
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", &self.dir))
    }

    /// Removes all but the newest `keep` timestamped files, never the current target.
    pub fn prune(&self, keep: usize) -> Result<usize, CertDirError> {
        let current = std::fs::read_link(self.current_path()).ok();
        let mut files: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(io("list", &self.dir))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| self.is_timestamped(n))
            .collect();
        files.sort();
        let excess = files.len().saturating_sub(keep);
        let mut removed = 0;
        for name in files.into_iter().take(excess) {
            if current.as_deref() == Some(Path::new(&name)) {
                continue;
            }
            let p = self.dir.join(&name);
            std::fs::remove_file(&p).map_err(io("remove", &p))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// `<prefix>-YYYY-MM-DD-HH-MM-SS.pem`.
    fn is_timestamped(&self, name: &str) -> bool {
        let Some(stamp) = name
            .strip_prefix(self.prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.strip_suffix(".pem"))
        else {
            return false;
        };
        stamp.len() == 19
            && stamp.bytes().enumerate().all(|(i, b)| {
                if matches!(i, 4 | 7 | 10 | 13 | 16) {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    }

    /// The bootstrap path's pending key: loaded when present and valid, else generated and
    /// written (0600, atomically) so a restart reuses it.
    pub fn pending_key(&self) -> Result<NodeKey, CertDirError> {
        let path = self.dir.join(PENDING_CLIENT_KEY);
        if let Ok(text) = read_bounded(&path)
            && let Ok(key) = NodeKey::from_pem(text.as_bytes())
        {
            return Ok(key);
        }
        self.ensure_dir()?;
        let key = NodeKey::generate()?;
        write_private_file(&path, key.to_pem()?.as_bytes()).map_err(io("write", &path))?;
        Ok(key)
    }

    /// Removes the pending key after success.
    pub fn remove_pending_key(&self) {
        let _ = std::fs::remove_file(self.dir.join(PENDING_CLIENT_KEY));
    }
}

/// `YYYY-MM-DD-HH-MM-SS` in UTC (the kubelet's `pairNamePrefix-<time>.pem` layout).
pub fn timestamp(now: SystemTime) -> String {
    jiff::Timestamp::try_from(now)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%d-%H-%M-%S")
        .to_string()
}

fn read_bounded(path: &Path) -> Result<Zeroizing<String>, CertDirError> {
    let f = std::fs::File::open(path).map_err(io("read", path))?;
    let mut text = Zeroizing::new(String::new());
    f.take(MAX_PEM_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io("read", path))?;
    if text.len() as u64 > MAX_PEM_BYTES {
        return Err(CertDirError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests;

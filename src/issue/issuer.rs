//! The issuer: builds the certificate for an approved, validated CSR, signs it through the
//! token key, parses it back and compares it with the profile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use der::{Decode, Encode, pem::LineEnding};
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::Certificate;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::ca::{CaBundle, authority_key_id};
use super::check::compare_with_profile;
use super::error::IssueError;
use super::leaf::LeafContents;
use super::names::SignerName;
use super::serial::random_serial;
use super::validate::ValidatedCsr;
use super::validity::{Window, window};
use crate::config::IssuanceConfig;
use crate::signer::{KeyRef, KeySignature, SignKey};

/// A certificate ready for `status.certificate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// Leaf + intermediates (not the root), PEM.
    pub pem_chain: String,
    /// The leaf, DER.
    pub der: Vec<u8>,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// NotBefore.
    pub not_before: SystemTime,
    /// NotAfter.
    pub not_after: SystemTime,
}

/// One CA: its certificate bundle and its key.
struct CaEntry {
    bundle: CaBundle,
    key: Arc<dyn SignKey>,
    aki: Vec<u8>,
    intermediates: String,
}

impl CaEntry {
    fn new(bundle: CaBundle, key: Arc<dyn SignKey>) -> Result<CaEntry, IssueError> {
        let cert_spki = bundle.cert.tbs_certificate().subject_public_key_info();
        if cert_spki != key.public_key() {
            return Err(IssueError::KeyMismatch {
                subject: bundle.cert.tbs_certificate().subject().to_string(),
            });
        }
        let aki = authority_key_id(&bundle.cert).map_err(|e| IssueError::Build(e.to_string()))?;
        let intermediates = bundle
            .intermediates_pem()
            .map_err(|e| IssueError::Build(e.to_string()))?;
        Ok(CaEntry {
            bundle,
            key,
            aki,
            intermediates,
        })
    }
}

/// Issues certificates: one CA for all signer names, or a CA per signer name.
pub struct Issuer {
    default_ca: Arc<CaEntry>,
    per_signer: BTreeMap<SignerName, Arc<CaEntry>>,
    cfg: IssuanceConfig,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field(
                "default_ca",
                &self
                    .default_ca
                    .bundle
                    .cert
                    .tbs_certificate()
                    .subject()
                    .to_string(),
            )
            .field("per_signer", &self.per_signer.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// One CA (certificate + token key) for every signer name. Refuses a key that is not the
    /// certificate's.
    pub fn new(
        ca: CaBundle,
        key: Arc<dyn SignKey>,
        cfg: IssuanceConfig,
    ) -> Result<Issuer, IssueError> {
        Ok(Issuer {
            default_ca: Arc::new(CaEntry::new(ca, key)?),
            per_signer: BTreeMap::new(),
            cfg,
        })
    }

    /// Uses a separate CA for one signer name (as kube-controller-manager's
    /// `--cluster-signing-<signer>-{cert,key}-file`).
    pub fn with_signer_ca(
        mut self,
        signer: SignerName,
        ca: CaBundle,
        key: Arc<dyn SignKey>,
    ) -> Result<Issuer, IssueError> {
        self.per_signer
            .insert(signer, Arc::new(CaEntry::new(ca, key)?));
        Ok(self)
    }

    /// The CA bundle that signs for `signer`.
    pub fn ca_for(&self, signer: SignerName) -> &CaBundle {
        &self.ca_entry(signer).bundle
    }

    fn ca_entry(&self, signer: SignerName) -> &CaEntry {
        self.per_signer.get(&signer).unwrap_or(&self.default_ca)
    }

    /// Issues the certificate for an approved CSR (blocking: one token signature).
    pub fn issue(
        &self,
        csr: &ValidatedCsr,
        now: SystemTime,
    ) -> Result<IssuedCertificate, IssueError> {
        let ca = self.ca_entry(csr.signer);
        let win = window(
            now,
            csr.requested_ttl,
            self.cfg.max_ttl,
            ca.bundle.not_after(),
        )?;
        let contents = LeafContents::for_csr(
            csr,
            ca.bundle.cert.tbs_certificate().subject().clone(),
            ca.aki.clone(),
        );
        let serial = random_serial().map_err(|_| IssueError::Random)?;
        let cert = build(
            &contents,
            serial.clone(),
            win,
            &csr.csr.public_key,
            ca.key.as_ref(),
        )?;
        let der = cert
            .to_der()
            .map_err(|e| IssueError::Build(e.to_string()))?;
        // Parse the finished DER back and compare with the profile (no second signature check:
        // the signer already verified the signature with the CA key).
        let parsed = Certificate::from_der(&der).map_err(|e| IssueError::Build(e.to_string()))?;
        compare_with_profile(&parsed, &contents, &serial, win, &csr.csr.public_key)?;
        // The PEM of the very bytes just checked (not a second encoding of the parsed form).
        let leaf_pem = der::pem::encode_string("CERTIFICATE", LineEnding::LF, &der)
            .map_err(|e| IssueError::Build(e.to_string()))?;
        Ok(IssuedCertificate {
            pem_chain: format!("{leaf_pem}{}", ca.intermediates),
            der,
            serial: hex::encode(serial.as_bytes()),
            not_before: win.not_before,
            not_after: win.not_after,
        })
    }
}

fn build(
    contents: &LeafContents,
    serial: SerialNumber,
    win: Window,
    spki: &spki::SubjectPublicKeyInfoOwned,
    key: &dyn SignKey,
) -> Result<Certificate, IssueError> {
    let err = |e: &dyn std::fmt::Display| IssueError::Build(e.to_string());
    let validity = Validity::new(
        Time::try_from(win.not_before).map_err(|e| err(&e))?,
        Time::try_from(win.not_after).map_err(|e| err(&e))?,
    );
    let builder = CertificateBuilder::new(contents.clone(), serial, validity, spki.clone())
        .map_err(|e| err(&e))?;
    builder
        .build::<_, KeySignature>(&KeyRef(key))
        .map_err(|e| match e {
            x509_cert::builder::Error::Signature(s) => IssueError::Sign(s.to_string()),
            other => err(&other),
        })
}

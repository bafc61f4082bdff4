//! The signing path of the reconcile loop: one signature per CSR, the certificate written
//! through `/status`, and the local audit records around the write (`signature_spent` before,
//! `status_written` after).

use std::sync::Arc;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use super::claim::{Claimed, claim_of, may_sign_now};
use super::reconcile::{Freshness, ReconcileError, Reconciler, name_of};
use super::write::{self, Outcome};
use crate::conditions::needs_signing;
use crate::issue::ValidatedCsr;
use crate::store::{AuditEvent, CertificateNote};

impl Reconciler {
    /// Signs once and writes the certificate; a conflict re-reads and writes the same
    /// certificate again, unless the CSR has one by then (it is never signed twice by us).
    pub(super) async fn sign(
        &self,
        csr: CertificateSigningRequest,
        v: ValidatedCsr,
        fresh: Freshness,
        key: &str,
    ) -> Result<(), ReconcileError> {
        let name = name_of(&csr);
        if !self.may_sign() {
            return Err(ReconcileError::NotLeader);
        }
        let csr = match fresh {
            Freshness::JustWritten => csr,
            // Active-active: the claim write is conditional on this object's resourceVersion,
            // so a stale event costs a 409, not a signature; no read needed.
            Freshness::FromWatch if self.active.is_some() => csr,
            // Watch events may lag behind our own writes: decide on a fresh read, so a stale
            // "approved, no certificate" event costs a GET, not a signature.
            Freshness::FromWatch => match self.csrs.get_opt(&name).await {
                Ok(Some(c)) if c.metadata.uid == csr.metadata.uid && needs_signing(&c) => c,
                Ok(_) => return Ok(()),
                Err(e) => {
                    return Err(ReconcileError::Api {
                        csr: name,
                        source: Box::new(e),
                    });
                }
            },
        };
        let (csr, claim) = match &self.active {
            None => (csr, None),
            Some(a) => match a.claim(&self.csrs, &self.identity, key, csr).await? {
                Claimed::Won(c, value) => {
                    if !may_sign_now(&a.view(), &self.identity, key, &c) {
                        return Err(ReconcileError::NotLeader);
                    }
                    (*c, Some(value))
                }
                Claimed::Deferred(holder) => return Err(ReconcileError::Deferred { holder }),
                Claimed::Lost => return Err(ReconcileError::ClaimLost),
                Claimed::NotOwner => return Ok(()),
            },
        };
        let core = Arc::clone(&self.core);
        let v2 = v.clone();
        let issued = tokio::task::spawn_blocking(move || core.sign(&v2))
            .await?
            .map_err(|source| ReconcileError::Issue {
                csr: name.clone(),
                source,
            })?;
        let (cert, record) = (issued.certificate, issued.record);
        let rv = rv_of(&csr);
        let sha256 = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &cert.der,
        ));
        let note = (cert.serial.clone(), sha256);
        self.audit(crate::audit::Kind::SignatureSpent, &name, rv, &note, None)
            .await?;
        tracing::info!(csr = %name, serial = %cert.serial, "signature spent");
        // After a 409 the certificate is written again only while our own claim is on the CSR
        // (active-active); a later claim by another replica means ours is discarded.
        let still_ours = |c: &CertificateSigningRequest| {
            claim
                .as_deref()
                .is_none_or(|ours| claim_of(c) == Some(ours))
        };
        let written = write::write_certificate(
            &self.csrs,
            csr,
            cert.pem_chain.as_bytes(),
            || self.may_sign(),
            still_ours,
        )
        .await;
        let outcome = match written {
            Ok(o) => o,
            Err(source) => {
                // Unknown whether it landed: not recorded as discarded (a retry re-reads and
                // finds it written, or signs again: both show in the audit as spent).
                return Err(ReconcileError::Api {
                    csr: name.clone(),
                    source,
                });
            }
        };
        match outcome {
            Outcome::Written(c) => {
                self.audit(
                    crate::audit::Kind::StatusWritten,
                    &name,
                    rv_of(&c),
                    &note,
                    record,
                )
                .await?;
                tracing::info!(csr = %name, serial = %cert.serial, "certificate written");
                Ok(())
            }
            Outcome::AlreadyHasCertificate => {
                self.discarded(&name, rv, &note, "csr got a certificate meanwhile")
                    .await?;
                Ok(())
            }
            Outcome::ClaimLost => {
                self.discarded(&name, rv, &note, "another replica claimed it meanwhile")
                    .await?;
                Ok(())
            }
            Outcome::NoLongerApproved => {
                self.discarded(&name, rv, &note, "csr no longer approved")
                    .await?;
                Ok(())
            }
            Outcome::NotLeader => {
                self.discarded(&name, rv, &note, "signing window closed before the write")
                    .await?;
                Err(ReconcileError::NotLeader)
            }
        }
    }

    /// A signature made and not released: audited (`signature_discarded`, same serial and
    /// SHA-256 as its `signature_spent`) and counted.
    async fn discarded(
        &self,
        name: &str,
        rv: u64,
        note: &(String, String),
        why: &'static str,
    ) -> Result<(), ReconcileError> {
        crate::metrics::global()
            .controller_signatures_discarded
            .inc();
        tracing::info!(csr = %name, serial = %note.0, why, "signature discarded, never written");
        self.audit(crate::audit::Kind::SignatureDiscarded, name, rv, note, None)
            .await
    }

    async fn audit(
        &self,
        kind: crate::audit::Kind,
        name: &str,
        rv: u64,
        note: &(String, String),
        issued: Option<crate::store::IssuedRecord>,
    ) -> Result<(), ReconcileError> {
        let (store, name, actor) = (self.store.clone(), name.to_owned(), self.identity.clone());
        let (serial, sha256) = note.clone();
        tokio::task::spawn_blocking(move || {
            store.record_external(
                &AuditEvent {
                    kind,
                    csr_name: &name,
                    actor: &actor,
                    resource_version: rv,
                    certificate: Some(CertificateNote {
                        serial_hex: &serial,
                        sha256_hex: &sha256,
                    }),
                },
                issued.as_ref(),
            )
        })
        .await??;
        Ok(())
    }
}

fn rv_of(csr: &CertificateSigningRequest) -> u64 {
    csr.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

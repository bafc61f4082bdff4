//! The create path after decoding and authorization, on ONE blocking thread: create limits,
//! the node's state, inspection + approval + signing ([`Issuance::process`], one parse and one
//! proof-of-possession check of the request), then one store transaction that inserts the CSR
//! with its conditions and certificate already set, the audit records of each step and the
//! node's issued-certificate record ([`Store::create_queued`]). The blocking thread only
//! queues that transaction; the request awaits its durable commit without holding a thread.
//! Watchers see one ADDED event with the finished object; the create answer carries the
//! certificate.
//!
//! When the signer is down the CSR is still stored, approved, and the backlog signs it later.
//! A token that hangs inside a signature cannot be interrupted: once the signer is marked down
//! (after `[signer] sign_timeout`) the request stops waiting, stores the CSR approved without a
//! certificate (the decision was handed over before signing), and the late signature, if it
//! ever comes, is dropped (a claim flag decides which side stores).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use tokio::sync::oneshot;

use super::error::ApiError;
use super::hooks::{Caller, Decision, Inspection, Outcome, SignFailure};
use super::peer::PeerAddr;
use super::rules::{add_condition, condition};
use super::{Api, blocking};
use crate::store::{Creation, CsrIndex, IssuedRecord, NodeState, PendingCreate, Stored};

/// Reason of the Failed condition for a signer-rule violation (upstream's).
pub(super) const SIGNER_VALIDATION_FAILURE: &str = "SignerValidationFailure";

/// What the blocking step did.
enum Done {
    /// Queued for the CSR writer (decisions included); the request awaits the commit without
    /// holding a thread. `needs_backlog`: approved but not signed, the backlog must sign it.
    Queued {
        pending: PendingCreate,
        needs_backlog: bool,
    },
    /// The request side stored the CSR without a certificate (the signer hung); this side's
    /// late signature was dropped.
    Abandoned,
}

/// The object to store and the audit kinds of the decisions applied to it.
struct Decided {
    csr: CertificateSigningRequest,
    kinds: Vec<&'static str>,
    record: Option<IssuedRecord>,
    /// Approved, but not signed: the backlog task must sign it.
    needs_backlog: bool,
}

fn with_condition(
    mut csr: CertificateSigningRequest,
    type_: &str,
    reason: &str,
    message: &str,
) -> CertificateSigningRequest {
    add_condition(
        &mut csr,
        condition(type_, reason, message, &super::csr::now()),
    );
    csr
}

/// The approved object (no certificate yet), handed to the request side before signing.
fn approved(csr: &CertificateSigningRequest, d: &Decision) -> Option<CertificateSigningRequest> {
    match d {
        Decision::Approve { reason, message } => {
            Some(with_condition(csr.clone(), "Approved", reason, message))
        }
        _ => None,
    }
}

/// Applies an outcome to the new object; `Err` for a request refused before storing.
fn decided(csr: CertificateSigningRequest, o: Outcome) -> Result<Decided, ApiError> {
    let plain = |csr, kinds: Vec<&'static str>| Decided {
        csr,
        kinds,
        record: None,
        needs_backlog: false,
    };
    let fail = |csr, reason: &str, message: &str| {
        plain(with_condition(csr, "Failed", reason, message), vec!["fail"])
    };
    match (o.inspection, o.decision) {
        (Inspection::AdmissionDenied { message }, _) => Err(ApiError::Forbidden { message }),
        (Inspection::Invalid(causes), _) => Err(ApiError::Invalid {
            name: csr.metadata.name.clone().unwrap_or_default(),
            causes,
        }),
        (Inspection::SignerRuleViolation { message }, _) => {
            Ok(fail(csr, SIGNER_VALIDATION_FAILURE, &message))
        }
        (Inspection::UnknownSigner { message }, _) => {
            Ok(fail(csr, crate::compat::signer_names::REASON, &message))
        }
        (Inspection::Valid, None | Some(Decision::Pending)) => Ok(plain(csr, vec![])),
        (Inspection::Valid, Some(Decision::Deny { reason, message })) => Ok(plain(
            with_condition(csr, "Denied", &reason, &message),
            vec!["deny"],
        )),
        (Inspection::Valid, Some(Decision::Approve { reason, message })) => {
            let csr = with_condition(csr, "Approved", &reason, &message);
            Ok(match o.signed {
                Some(Ok(issued)) => {
                    let mut csr = csr;
                    csr.status.get_or_insert_with(Default::default).certificate =
                        Some(ByteString(issued.pem_chain));
                    Decided {
                        csr,
                        kinds: vec!["approve", "issue"],
                        record: issued.record,
                        needs_backlog: false,
                    }
                }
                Some(Err(SignFailure::Refused { message })) => {
                    let csr = with_condition(csr, "Failed", SIGNER_VALIDATION_FAILURE, &message);
                    plain(csr, vec!["approve", "fail"])
                }
                None | Some(Err(SignFailure::Unavailable)) => Decided {
                    needs_backlog: true,
                    ..plain(csr, vec!["approve"])
                },
            })
        }
    }
}

impl Api {
    /// Stores a new, prepared CSR with everything the appliance decides about it at once.
    pub(super) async fn create_decided(
        &self,
        csr: CertificateSigningRequest,
        caller: &Caller,
        index: CsrIndex,
        peer: Option<PeerAddr>,
    ) -> Result<Stored, ApiError> {
        let (handoff, handed) = oneshot::channel();
        let claimed = Arc::new(AtomicBool::new(false));
        let (api, who, claim) = (self.clone(), caller.clone(), Arc::clone(&claimed));
        // The request's audit context (who, request id) and log span go with the work.
        let (ctx, span) = (crate::audit::context::capture(), tracing::Span::current());
        let mut task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                crate::audit::context::enter(ctx, || {
                    api.create_blocking(csr, &who, &index, peer, handoff, &claim)
                })
            })
        });
        let early = tokio::select! {
            r = &mut task => Some(r),
            () = self.until_not_ready() => None,
        };
        let joined = match early {
            Some(r) => r,
            // The signer went (or was) down while this request was inside. If the blocking
            // side handed over an approved object and has not stored yet, store it here.
            None => match handed.await {
                Ok((approved, index)) if !claimed.swap(true, Ordering::AcqRel) => {
                    return self.store_unsigned(approved, caller, index).await;
                }
                _ => task.await,
            },
        };
        match joined.map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?? {
            Done::Queued {
                pending,
                needs_backlog,
            } => {
                let stored = pending.durable().await?;
                if needs_backlog {
                    self.inner.wake_signer.notify_one();
                }
                Ok(stored)
            }
            Done::Abandoned => Err(ApiError::Internal("create abandoned twice".to_owned())),
        }
    }

    /// The request side's store of an approved CSR whose signature hung.
    async fn store_unsigned(
        &self,
        csr: CertificateSigningRequest,
        caller: &Caller,
        index: CsrIndex,
    ) -> Result<Stored, ApiError> {
        tracing::warn!(csr = ?csr.metadata.name, "signer unavailable; csr stays approved until it recovers");
        let (store, actor) = (self.inner.store.clone(), caller.user.clone());
        let pending = blocking(move || {
            let how = Creation {
                index: &index,
                actor: &actor,
                decided: &["approve"],
                issued: None,
                requested: None,
            };
            store.create_queued(csr, &how)
        })
        .await??;
        let stored = pending.durable().await?;
        self.inner.wake_signer.notify_one();
        Ok(stored)
    }

    /// The blocking part of [`Api::create_decided`].
    fn create_blocking(
        &self,
        csr: CertificateSigningRequest,
        caller: &Caller,
        index: &CsrIndex,
        peer: Option<PeerAddr>,
        handoff: oneshot::Sender<(CertificateSigningRequest, CsrIndex)>,
        claimed: &AtomicBool,
    ) -> Result<Done, ApiError> {
        self.check_create_limits(caller, index.node_name.as_deref())?;
        if self.inner.external {
            return self.create_external(csr, caller, index);
        }
        self.record_first_address(&csr, caller, index, peer);
        let store = &self.inner.store;
        let node = match &index.node_name {
            Some(n) => store.node_state(n, super::csr::now_unix())?,
            None => NodeState::default(),
        };
        let issuance = &self.inner.issuance;
        let mut handoff = Some(handoff);
        let mut before_sign = |d: &Decision| {
            if !issuance.ready() {
                return false;
            }
            if let (Some(tx), Some(a)) = (handoff.take(), approved(&csr, d)) {
                // The request side may have stopped listening: then it will not claim.
                let _ = tx.send((a, index.clone()));
            }
            true
        };
        let mut outcome = issuance.process(&csr, caller, node, &mut before_sign);
        let requested = outcome.requested.take();
        let signing = outcome.signed.is_some();
        let d = decided(csr, outcome)?;
        if signing && claimed.swap(true, Ordering::AcqRel) {
            tracing::warn!("a signature arrived after its request gave up on the signer; dropped");
            return Ok(Done::Abandoned);
        }
        let how = Creation {
            index,
            actor: &caller.user,
            decided: &d.kinds,
            issued: d.record.as_ref(),
            requested: requested.as_ref(),
        };
        Ok(Done::Queued {
            pending: store.create_queued(d.csr, &how)?,
            needs_backlog: d.needs_backlog,
        })
    }

    /// External signing: the controller approves, fails and signs, as with a real
    /// kube-apiserver (which leaves every new CSR pending); only refusals before storing apply.
    fn create_external(
        &self,
        csr: CertificateSigningRequest,
        caller: &Caller,
        index: &CsrIndex,
    ) -> Result<Done, ApiError> {
        let outcome = Outcome {
            inspection: self.inner.issuance.inspect(&csr),
            decision: None,
            signed: None,
            requested: None,
        };
        let d = match outcome.inspection {
            Inspection::AdmissionDenied { .. } | Inspection::Invalid(_) => decided(csr, outcome)?,
            _ => Decided {
                csr,
                kinds: vec![],
                record: None,
                needs_backlog: false,
            },
        };
        let how = Creation {
            index,
            actor: &caller.user,
            decided: &d.kinds,
            issued: None,
            requested: None,
        };
        Ok(Done::Queued {
            pending: self.inner.store.create_queued(d.csr, &how)?,
            needs_backlog: false,
        })
    }
}

//! The create path after decoding, the one parse of the request and authorization:
//!
//! 1. the node's lock is taken ([`crate::core::NodeLocks`]) and held until the CSR is durable,
//!    so "one live certificate per node" is read and recorded in one serialized step;
//! 2. on ONE blocking thread: create limits, the node's state, then the core
//!    ([`Core::process`]): validation of the already parsed request, approval, signing;
//! 3. one store transaction ([`Store::create_queued`]) inserts the CSR with its conditions and
//!    certificate already set, the audit records of each step, the node's issued-certificate
//!    record and — only for an approved request — its first bootstrap address (trust on first
//!    use). The blocking thread only queues that transaction; the request awaits its durable
//!    commit without holding a thread.
//!
//! When the signer is down the CSR is still stored, approved, and the backlog signs it later.
//! A token that hangs inside a signature cannot be interrupted: once the signer is marked down
//! (after `[signer] sign_timeout`) the request stops waiting, stores the CSR approved without a
//! certificate (the decision was handed over before signing), and the late signature, if it
//! ever comes, is dropped (a claim flag decides which side stores).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use globset::{Glob, GlobSet, GlobSetBuilder};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use tokio::sync::oneshot;

use crate::api::edge::peer::PeerAddr;
use crate::api::error::{ApiError, Cause};
use crate::api::hooks::Caller;
use crate::api::{Api, blocking};
use crate::audit::Kind;
use crate::authn::AuthMethod;
use crate::conditions::{ConditionType, SIGNER_VALIDATION_FAILURE};
use crate::conditions::{add_condition, condition};
use crate::core::{Decision, Inspection, Outcome, SignFailure, index_of, node_facts};
use crate::issue::{CsrRequest, SpecFields};
use crate::store::{
    Creation, CsrIndex, FirstAddress, IssuedRecord, NodeState, PendingCreate, Stored,
};

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

/// What the request side needs to store an approved CSR whose signature hung.
struct Handoff {
    csr: CertificateSigningRequest,
    index: CsrIndex,
    requested: (String, Vec<String>),
    first_address: Option<FirstAddress>,
}

/// The object to store and the audit kinds of the decisions applied to it.
struct Decided {
    csr: CertificateSigningRequest,
    kinds: Vec<Kind>,
    record: Option<IssuedRecord>,
    /// Approved, but not signed: the backlog task must sign it.
    needs_backlog: bool,
    /// Approved (the only outcome that may record facts such as the first address).
    approved: bool,
}

fn with_condition(
    mut csr: CertificateSigningRequest,
    type_: ConditionType,
    reason: &str,
    message: &str,
) -> CertificateSigningRequest {
    add_condition(&mut csr, condition(type_, reason, message, &super::now()));
    csr
}

/// The approved object (no certificate yet), handed to the request side before signing.
fn approved(csr: &CertificateSigningRequest, d: &Decision) -> Option<CertificateSigningRequest> {
    match d {
        Decision::Approve { reason, message } => Some(with_condition(
            csr.clone(),
            ConditionType::Approved,
            reason,
            message,
        )),
        _ => None,
    }
}

/// Applies an outcome to the new object; `Err` for a request refused before storing.
fn decided(csr: CertificateSigningRequest, o: Outcome) -> Result<Decided, ApiError> {
    let plain = |csr, kinds: Vec<Kind>| Decided {
        csr,
        kinds,
        record: None,
        needs_backlog: false,
        approved: false,
    };
    let fail = |csr, reason: &str, message: &str| {
        plain(
            with_condition(csr, ConditionType::Failed, reason, message),
            vec![Kind::Fail],
        )
    };
    match (o.inspection, o.decision) {
        (Inspection::AdmissionDenied { message }, _) => Err(ApiError::Forbidden { message }),
        (Inspection::Invalid { field, message }, _) => Err(ApiError::Invalid {
            name: csr.metadata.name.clone().unwrap_or_default(),
            causes: vec![Cause {
                reason: "FieldValueInvalid",
                field: field.to_owned(),
                message,
            }],
        }),
        (Inspection::SignerRuleViolation { message }, _) => {
            Ok(fail(csr, SIGNER_VALIDATION_FAILURE, &message))
        }
        (Inspection::UnknownSigner { message }, _) => {
            Ok(fail(csr, crate::core::unknown_signer::REASON, &message))
        }
        (Inspection::Valid, None | Some(Decision::Pending { .. })) => Ok(plain(csr, vec![])),
        (Inspection::Valid, Some(Decision::Deny { reason, message })) => Ok(plain(
            with_condition(csr, ConditionType::Denied, &reason, &message),
            vec![Kind::Deny],
        )),
        (Inspection::Valid, Some(Decision::Approve { reason, message })) => {
            let csr = with_condition(csr, ConditionType::Approved, &reason, &message);
            Ok(match o.signed {
                Some(Ok(issued)) => {
                    let mut csr = csr;
                    csr.status.get_or_insert_with(Default::default).certificate =
                        Some(ByteString(issued.certificate.pem_chain.into_bytes()));
                    Decided {
                        csr,
                        kinds: vec![Kind::Approve, Kind::Issue],
                        record: issued.record,
                        needs_backlog: false,
                        approved: true,
                    }
                }
                Some(Err(SignFailure::Refused { message })) => {
                    let csr = with_condition(
                        csr,
                        ConditionType::Failed,
                        SIGNER_VALIDATION_FAILURE,
                        &message,
                    );
                    Decided {
                        approved: true,
                        ..plain(csr, vec![Kind::Approve, Kind::Fail])
                    }
                }
                None | Some(Err(SignFailure::Unavailable)) => Decided {
                    needs_backlog: true,
                    approved: true,
                    ..plain(csr, vec![Kind::Approve])
                },
            })
        }
    }
}

/// The bootstrap token's node-name patterns, compiled; `None` when the caller did not use a
/// bound bootstrap token. Patterns are validated when the token is created; one that no longer
/// compiles is dropped, and a token left with none matches no node (as `allows_node` does).
fn token_node_patterns(caller: &Caller) -> Option<GlobSet> {
    let AuthMethod::BootstrapToken(info) = &caller.method else {
        return None;
    };
    if info.node_name_patterns.is_empty() {
        return None;
    }
    let mut b = GlobSetBuilder::new();
    for p in &info.node_name_patterns {
        match Glob::new(p) {
            Ok(g) => {
                b.add(g);
            }
            Err(e) => tracing::warn!(pattern = %p, error = %e, "bad bootstrap-token node pattern"),
        }
    }
    Some(b.build().unwrap_or_else(|_| GlobSet::empty()))
}

impl Api {
    /// Stores a new, prepared CSR with everything the appliance decides about it at once.
    /// `request` is the one parse of `csr.spec.request` (made by the caller, at the edge).
    pub(in crate::api) async fn create_decided(
        &self,
        csr: CertificateSigningRequest,
        request: CsrRequest,
        caller: &Caller,
        peer: Option<PeerAddr>,
    ) -> Result<Stored, ApiError> {
        let index = index_of(&request);
        // Held until the CSR (and its certificate record) is durable: decisions about one node
        // are made one at a time.
        let _node = match (&index.node_name, self.inner.external) {
            (Some(n), false) => Some(self.inner.core.nodes().lock(n).await),
            _ => None,
        };
        let (handoff, handed) = oneshot::channel();
        let claimed = Arc::new(AtomicBool::new(false));
        let (api, who, claim) = (self.clone(), caller.clone(), Arc::clone(&claimed));
        // The request's audit context (who, request id) and log span go with the work.
        let (ctx, span) = (crate::audit::context::capture(), tracing::Span::current());
        let mut task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                crate::audit::context::enter(ctx, || {
                    api.create_blocking(csr, request, &who, index, peer, handoff, &claim)
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
                Ok(h) if !claimed.swap(true, Ordering::AcqRel) => {
                    return self.store_unsigned(h, caller).await;
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
    async fn store_unsigned(&self, h: Handoff, caller: &Caller) -> Result<Stored, ApiError> {
        tracing::warn!(csr = ?h.csr.metadata.name, "signer unavailable; csr stays approved until it recovers");
        let (store, actor) = (self.inner.store.clone(), caller.user.clone());
        let pending = blocking(move || {
            let how = Creation {
                index: &h.index,
                actor: &actor,
                decided: &[Kind::Approve],
                issued: None,
                requested: Some(&h.requested),
                first_address: h.first_address.as_ref(),
            };
            store.create_queued(h.csr, &how)
        })
        .await??;
        let stored = pending.durable().await?;
        self.inner.wake_signer.notify_one();
        Ok(stored)
    }

    /// The blocking part of [`Api::create_decided`].
    #[allow(clippy::too_many_arguments)]
    fn create_blocking(
        &self,
        csr: CertificateSigningRequest,
        request: CsrRequest,
        caller: &Caller,
        index: CsrIndex,
        peer: Option<PeerAddr>,
        handoff: oneshot::Sender<Handoff>,
        claimed: &AtomicBool,
    ) -> Result<Done, ApiError> {
        // One read snapshot of the node for the limits and the decision (in external mode,
        // where the appliance decides nothing, the pending count alone).
        let store = &self.inner.store;
        let view = match &index.node_name {
            Some(n) if self.inner.external => {
                Some((store.pending_for_node(n)?, NodeState::default()))
            }
            Some(n) => Some(store.node_view(n, super::now_unix())?),
            None => None,
        };
        let pending = view.as_ref().map_or(0, |(p, _)| *p);
        self.check_create_limits(caller, index.node_name.as_deref(), pending)?;
        let requested = request.describe();
        let core = &self.inner.core;
        // The requester fields were set by the server (`prepare`) from the caller.
        let validated = core.validate(request, &SpecFields::from_spec(&csr.spec));
        if self.inner.external {
            return self.create_external(
                csr,
                core.inspect(validated.as_ref()),
                caller,
                index,
                requested,
            );
        }
        let node = view.map(|(_, state)| state).unwrap_or_default();
        let facts = node_facts(
            &node,
            token_node_patterns(caller),
            core.config().record_first_bootstrap_address,
        );
        // Trust on first use: a candidate now, recorded only if the request is approved.
        let first_address = match (&validated, peer, &index.node_name) {
            (Ok(v), Some(PeerAddr(ip)), Some(n)) if core.records_first_address(v) => {
                Some(first(n, ip))
            }
            _ => None,
        };
        let name = csr.metadata.name.clone().unwrap_or_default();
        let mut handoff = Some(handoff);
        let mut before_sign = |d: &Decision| {
            if !core.ready() {
                return false;
            }
            if let (Some(tx), Some(a)) = (handoff.take(), approved(&csr, d)) {
                // The request side may have stopped listening: then it will not claim.
                let _ = tx.send(Handoff {
                    csr: a,
                    index: index.clone(),
                    requested: requested.clone(),
                    first_address: first_address.clone(),
                });
            }
            true
        };
        let outcome = core.process(validated.as_ref(), &facts, &name, &mut before_sign);
        let signing = outcome.signed.is_some();
        let d = decided(csr, outcome)?;
        if signing && claimed.swap(true, Ordering::AcqRel) {
            tracing::warn!("a signature arrived after its request gave up on the signer; dropped");
            return Ok(Done::Abandoned);
        }
        let how = Creation {
            index: &index,
            actor: &caller.user,
            decided: &d.kinds,
            issued: d.record.as_ref(),
            requested: Some(&requested),
            first_address: first_address.as_ref().filter(|_| d.approved),
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
        inspection: Inspection,
        caller: &Caller,
        index: CsrIndex,
        requested: (String, Vec<String>),
    ) -> Result<Done, ApiError> {
        let d = match inspection {
            Inspection::AdmissionDenied { .. } | Inspection::Invalid { .. } => decided(
                csr,
                Outcome {
                    inspection,
                    decision: None,
                    signed: None,
                },
            )?,
            _ => Decided {
                csr,
                kinds: vec![],
                record: None,
                needs_backlog: false,
                approved: false,
            },
        };
        let how = Creation {
            index: &index,
            actor: &caller.user,
            decided: &d.kinds,
            issued: None,
            requested: Some(&requested),
            first_address: None,
        };
        Ok(Done::Queued {
            pending: self.inner.store.create_queued(d.csr, &how)?,
            needs_backlog: false,
        })
    }
}

fn first(node: &str, address: IpAddr) -> FirstAddress {
    FirstAddress {
        node: node.to_owned(),
        address,
    }
}

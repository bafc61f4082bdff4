//! Writes to a CSR's subresources, each a replace conditional on the resourceVersion read: a
//! 409 re-reads and re-decides (never blindly overwrites another writer's change).

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::PostParams;

use crate::conditions::{
    ConditionType, add_condition, condition, has_condition, is_decided, needs_signing,
};

/// Conflicts tolerated for one write before giving up (the CSR is retried later).
const MAX_CONFLICTS: usize = 5;

/// What became of a certificate write.
#[derive(Debug)]
pub enum Outcome {
    /// Written; the CSR as stored.
    Written(Box<CertificateSigningRequest>),
    /// Another writer set a certificate first: ours is discarded, never written.
    AlreadyHasCertificate,
    /// The CSR was denied / failed / deleted meanwhile.
    NoLongerApproved,
    /// The signing window closed before the write.
    NotLeader,
    /// Active-active: after a 409 the CSR no longer carries our claim (another replica
    /// claimed it): ours is discarded, never written.
    ClaimLost,
}

type KubeResult<T> = Result<T, Box<kube::Error>>;

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn now() -> Time {
    crate::clock::k8s_now()
}

/// Re-reads after a conflict; `None` when the CSR is gone.
async fn reread(
    api: &Api<CertificateSigningRequest>,
    name: &str,
) -> KubeResult<Option<CertificateSigningRequest>> {
    api.get_opt(name).await.map_err(Box::new)
}

/// Adds Approved or Denied through `/approval` unless a decision exists already. Returns the
/// CSR as written (None: someone else decided first, or it is gone).
pub async fn add_approval_condition(
    api: &Api<CertificateSigningRequest>,
    csr: CertificateSigningRequest,
    type_: ConditionType,
    reason: &str,
    message: &str,
) -> KubeResult<Option<CertificateSigningRequest>> {
    let cond = NewCondition {
        type_,
        reason,
        message,
    };
    add_condition_through(api, csr, Subresource::Approval, &cond, is_decided).await
}

/// Adds a condition (Failed) through `/status` unless the CSR is decided-against or signed.
pub async fn add_status_condition(
    api: &Api<CertificateSigningRequest>,
    csr: CertificateSigningRequest,
    type_: ConditionType,
    reason: &str,
    message: &str,
) -> KubeResult<Option<CertificateSigningRequest>> {
    let settled = |c: &CertificateSigningRequest| {
        let signed = c
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|cert| !cert.0.is_empty());
        signed || has_condition(c, ConditionType::Denied) || has_condition(c, type_)
    };
    let cond = NewCondition {
        type_,
        reason,
        message,
    };
    add_condition_through(api, csr, Subresource::Status, &cond, settled).await
}

/// The subresource a condition is written through.
#[derive(Clone, Copy)]
enum Subresource {
    Approval,
    Status,
}

/// A condition to add.
struct NewCondition<'a> {
    type_: ConditionType,
    reason: &'a str,
    message: &'a str,
}

/// Adds `cond` through `via` unless `settled` says the CSR needs it no more; a 409 re-reads and
/// asks `settled` again. Returns the CSR as written (None: settled meanwhile, or gone).
async fn add_condition_through(
    api: &Api<CertificateSigningRequest>,
    mut csr: CertificateSigningRequest,
    via: Subresource,
    cond: &NewCondition<'_>,
    settled: impl Fn(&CertificateSigningRequest) -> bool,
) -> KubeResult<Option<CertificateSigningRequest>> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    let pp = PostParams::default();
    for _ in 0..MAX_CONFLICTS {
        if settled(&csr) {
            return Ok(None);
        }
        add_condition(
            &mut csr,
            condition(cond.type_, cond.reason, cond.message, &now()),
        );
        let written = match via {
            Subresource::Approval => api.replace_subresource("approval", &name, &pp, &csr).await,
            Subresource::Status => api.replace_status(&name, &pp, &csr).await,
        };
        match written {
            Ok(c) => return Ok(Some(c)),
            Err(e) if is_conflict(&e) => match reread(api, &name).await? {
                Some(c) => csr = c,
                None => return Ok(None),
            },
            Err(e) => return Err(Box::new(e)),
        }
    }
    Ok(None)
}

/// Writes `pem` as `status.certificate` with the resourceVersion read; on 409 re-reads and
/// writes the same certificate again only if the CSR still needs one and `still_ours` holds
/// for it (active-active: our claim is still on it).
pub async fn write_certificate(
    api: &Api<CertificateSigningRequest>,
    mut csr: CertificateSigningRequest,
    pem: &[u8],
    may_sign: impl Fn() -> bool,
    still_ours: impl Fn(&CertificateSigningRequest) -> bool,
) -> KubeResult<Outcome> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    for _ in 0..MAX_CONFLICTS {
        if !needs_signing(&csr) {
            let signed = csr
                .status
                .as_ref()
                .and_then(|s| s.certificate.as_ref())
                .is_some_and(|c| !c.0.is_empty());
            let ours = csr
                .status
                .as_ref()
                .and_then(|s| s.certificate.as_ref())
                .is_some_and(|c| c.0 == pem);
            return Ok(if ours {
                // An earlier attempt's write landed but its answer was lost.
                Outcome::Written(Box::new(csr))
            } else if signed {
                Outcome::AlreadyHasCertificate
            } else {
                Outcome::NoLongerApproved
            });
        }
        if !still_ours(&csr) {
            return Ok(Outcome::ClaimLost);
        }
        if !may_sign() {
            return Ok(Outcome::NotLeader);
        }
        csr.status.get_or_insert_with(Default::default).certificate =
            Some(ByteString(pem.to_vec()));
        match api
            .replace_status(&name, &PostParams::default(), &csr)
            .await
        {
            Ok(c) => return Ok(Outcome::Written(Box::new(c))),
            Err(e) if is_conflict(&e) => match reread(api, &name).await? {
                Some(c) => csr = c,
                None => return Ok(Outcome::NoLongerApproved),
            },
            Err(e) => return Err(Box::new(e)),
        }
    }
    Err(Box::new(kube::Error::Api(Box::new(
        kube::core::Status::failure("too many conflicts writing the certificate", "Conflict")
            .with_code(409),
    ))))
}

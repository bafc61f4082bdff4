//! Authorization: who may do what with `certificatesigningrequests` (SECURITY.md,
//! mitigations). Pure functions, no I/O.
//!
//! - Discovery, `/version` and the OpenAPI documents: every authenticated caller.
//! - Admins (configured users and groups, default group `system:masters`): create any CSR,
//!   read all, approve, deny, delete, update metadata.
//! - Bootstrap groups: create `kubernetes.io/kube-apiserver-client-kubelet` CSRs only.
//! - Nodes (`system:node:<n>` in `system:nodes`): create client (renewal) and
//!   `kubernetes.io/kubelet-serving` CSRs whose subject CN is their own user name.
//! - Get/list/watch: a caller's own CSRs only (admins all); lists are filtered with [`owns`].
//! - Nobody writes `status` through the API: only the appliance's own signer does, on an
//!   internal path that is not a [`Verb`].
//! - External-signing mode adds [`rbac`]: what the matrix does not allow, the RBAC manifests
//!   may (the controller's `/approval` and `/status` writes, reads of every CSR, Leases); and,
//!   as kube-apiserver's admission does, `/approval` writes need `approve` and certificate
//!   writes need `sign` on `certificates.k8s.io` `signers` ([`may_use_signer`]).

pub mod rbac;

use crate::authn::Identity;
use crate::config::AuthConfig;

/// Signer name of kubelet client certificates (bootstrap and renewal).
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Signer name of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// The group every node is in.
pub const NODES_GROUP: &str = "system:nodes";
/// The user-name prefix of nodes.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The resource every message talks about.
const RESOURCE: &str = "certificatesigningrequests";

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Read one CSR.
    Get,
    /// List CSRs (the result is filtered with [`owns`] for non-admins).
    List,
    /// Watch CSRs (events filtered with [`owns`] for non-admins).
    Watch,
    /// Create a CSR.
    Create,
    /// Delete a CSR.
    Delete,
    /// `PUT …/approval`: approve or deny.
    UpdateApproval,
    /// `PUT …/status`: never allowed through the API.
    UpdateStatus,
    /// `PUT` of the CSR itself (metadata; the spec is immutable).
    Update,
    /// `PATCH …/approval` (RBAC verb `patch`; the matrix treats it as [`Verb::UpdateApproval`]).
    PatchApproval,
    /// `PATCH …/status` (RBAC verb `patch`).
    PatchStatus,
    /// `PATCH` of the CSR itself (RBAC verb `patch`).
    Patch,
    /// Discovery, `/version`, OpenAPI documents.
    Discovery,
}

impl Verb {
    /// The verb as Kubernetes names it in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Delete => "delete",
            Verb::UpdateApproval | Verb::UpdateStatus | Verb::Update => "update",
            Verb::PatchApproval | Verb::PatchStatus | Verb::Patch => "patch",
            Verb::Discovery => "get",
        }
    }

    /// The update verb this patch verb is checked as by the matrix.
    fn as_update(self) -> Verb {
        match self {
            Verb::PatchApproval => Verb::UpdateApproval,
            Verb::PatchStatus => Verb::UpdateStatus,
            Verb::Patch => Verb::Update,
            v => v,
        }
    }

    fn subresource(self) -> Option<&'static str> {
        match self.as_update() {
            Verb::UpdateApproval => Some("approval"),
            Verb::UpdateStatus => Some("status"),
            _ => None,
        }
    }

    fn target(self) -> &'static str {
        match self.as_update() {
            Verb::UpdateApproval => "certificatesigningrequests/approval",
            Verb::UpdateStatus => "certificatesigningrequests/status",
            Verb::Discovery => "discovery",
            _ => RESOURCE,
        }
    }
}

/// The facts about one CSR that authorization needs (taken from the stored or submitted CSR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsrFacts<'a> {
    /// `spec.username`: who created it (for a create: the caller).
    pub requester_username: &'a str,
    /// The subject CN of the PKCS#10 request, when it parses.
    pub subject_cn: Option<&'a str>,
    /// `spec.signerName`.
    pub signer_name: &'a str,
}

/// The loaded RBAC policy, shared (compared by identity).
#[derive(Debug, Clone)]
pub struct SharedRbac(pub std::sync::Arc<rbac::Rbac>);

impl PartialEq for SharedRbac {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedRbac {}

/// Who counts as an administrator or a bootstrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzConfig {
    /// Groups whose members are administrators.
    pub admin_groups: Vec<String>,
    /// Users who are administrators.
    pub admin_users: Vec<String>,
    /// Groups whose members may create kubelet client CSRs; an entry ending in `*` is a prefix.
    pub bootstrap_groups: Vec<String>,
    /// RBAC from `[auth] rbac_manifests` (external-signing mode only).
    pub rbac: Option<SharedRbac>,
}

impl From<&AuthConfig> for AuthzConfig {
    fn from(c: &AuthConfig) -> Self {
        AuthzConfig {
            admin_groups: c.admin_groups.clone(),
            admin_users: c.admin_users.clone(),
            bootstrap_groups: c.bootstrap_groups.clone(),
            rbac: None,
        }
    }
}

impl Default for AuthzConfig {
    fn default() -> Self {
        AuthzConfig::from(&AuthConfig::default())
    }
}

/// The caller may not do this. The message is safe to show the client (a 403 `Status`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Forbidden {
    /// E.g. `user "x" cannot create certificatesigningrequests with signerName "y"`.
    pub message: String,
}

fn group_matches(pattern: &str, group: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => group.starts_with(prefix),
        None => pattern == group,
    }
}

/// True when the caller is an administrator.
pub fn is_admin(id: &Identity, cfg: &AuthzConfig) -> bool {
    cfg.admin_users.contains(&id.user) || id.groups.iter().any(|g| cfg.admin_groups.contains(g))
}

/// True when the caller is in a bootstrap group.
pub fn is_bootstrapper(id: &Identity, cfg: &AuthzConfig) -> bool {
    id.groups
        .iter()
        .any(|g| cfg.bootstrap_groups.iter().any(|p| group_matches(p, g)))
}

/// The node name when the caller is a node (`system:node:<n>` in `system:nodes`).
pub fn node_name(id: &Identity) -> Option<&str> {
    let name = id.user.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && id.in_group(NODES_GROUP)).then_some(name)
}

/// True when the CSR is the caller's own: it requested it, or (for a node) its subject CN is
/// the node's user name. Used to filter lists and watches.
pub fn owns(id: &Identity, csr: &CsrFacts<'_>) -> bool {
    csr.requester_username == id.user
        || (node_name(id).is_some() && csr.subject_cn == Some(id.user.as_str()))
}

fn may_create(id: &Identity, csr: &CsrFacts<'_>, cfg: &AuthzConfig) -> bool {
    if is_admin(id, cfg) {
        return true;
    }
    if csr.signer_name == KUBELET_CLIENT_SIGNER && is_bootstrapper(id, cfg) {
        return true;
    }
    node_name(id).is_some()
        && (csr.signer_name == KUBELET_CLIENT_SIGNER || csr.signer_name == KUBELET_SERVING_SIGNER)
        && csr.subject_cn == Some(id.user.as_str())
}

/// May the caller read CSRs at all (list/watch the collection, get a missing one)?
fn may_read_collection(id: &Identity, cfg: &AuthzConfig) -> bool {
    is_admin(id, cfg) || is_bootstrapper(id, cfg) || node_name(id).is_some()
}

fn forbidden(id: &Identity, verb: Verb, csr: Option<&CsrFacts<'_>>, rbac: bool) -> Forbidden {
    let mut message = format!(
        "user {:?} cannot {} {}",
        id.user,
        verb.as_str(),
        verb.target()
    );
    if let (Verb::Create, Some(c)) = (verb, csr) {
        message.push_str(&format!(" with signerName {:?}", c.signer_name));
    }
    if verb.as_update() == Verb::UpdateStatus && !rbac {
        message.push_str(": only the appliance's signer writes status");
    }
    Forbidden { message }
}

/// Decides one request. `csr` is the CSR concerned (the submitted one for `Create`, the stored
/// one for the others) or `None` for a collection (`List`/`Watch`), `Discovery`, or a CSR that
/// does not exist (then the verb-level permission decides, so the caller gets 404 or 403).
pub fn authorize(
    id: &Identity,
    verb: Verb,
    csr: Option<&CsrFacts<'_>>,
    cfg: &AuthzConfig,
) -> Result<(), Forbidden> {
    authorize_named(id, verb, csr, None, cfg)
}

/// [`authorize`] for a request that names one CSR (`name`), so RBAC rules with resourceNames
/// can match it (the request's name, as kube-apiserver's RequestInfo has it, whether or not
/// the CSR exists).
pub fn authorize_named(
    id: &Identity,
    verb: Verb,
    csr: Option<&CsrFacts<'_>>,
    name: Option<&str>,
    cfg: &AuthzConfig,
) -> Result<(), Forbidden> {
    let allowed = match verb.as_update() {
        Verb::Discovery => true,
        Verb::UpdateStatus => false,
        Verb::Create => csr.is_some_and(|c| may_create(id, c, cfg)),
        Verb::Get | Verb::List | Verb::Watch => match csr {
            Some(c) => is_admin(id, cfg) || owns(id, c),
            None => may_read_collection(id, cfg),
        },
        Verb::Delete | Verb::UpdateApproval | Verb::Update => is_admin(id, cfg),
        Verb::PatchApproval | Verb::PatchStatus | Verb::Patch => false,
    };
    if allowed || rbac_allows_csr(id, verb, name, cfg) {
        Ok(())
    } else {
        Err(forbidden(id, verb, csr, cfg.rbac.is_some()))
    }
}

/// The verb-level check made before a request body is read: may this caller do `verb` to any
/// CSR at all? `Create`: administrators, bootstrap groups, nodes, or RBAC; the other verbs: as
/// [`authorize_named`] without facts (their rules do not depend on the object). The full check
/// with the decoded object follows.
pub fn may_attempt(
    id: &Identity,
    verb: Verb,
    name: Option<&str>,
    cfg: &AuthzConfig,
) -> Result<(), Forbidden> {
    if verb != Verb::Create {
        return authorize_named(id, verb, None, name, cfg);
    }
    if is_admin(id, cfg)
        || is_bootstrapper(id, cfg)
        || node_name(id).is_some()
        || rbac_allows_csr(id, verb, None, cfg)
    {
        Ok(())
    } else {
        Err(forbidden(id, verb, None, cfg.rbac.is_some()))
    }
}

/// The API group of CSRs and signers.
const CERTIFICATES_GROUP: &str = "certificates.k8s.io";

/// Whether the RBAC manifests grant this CSR request (`name`: the CSR the request names, none
/// for collections and creates, where rules restricted to names do not match).
fn rbac_allows_csr(id: &Identity, verb: Verb, name: Option<&str>, cfg: &AuthzConfig) -> bool {
    let Some(SharedRbac(rbac)) = &cfg.rbac else {
        return false;
    };
    if verb == Verb::Discovery {
        return false;
    }
    rbac.allows(
        id,
        &rbac::Request {
            verb: verb.as_str(),
            api_group: CERTIFICATES_GROUP,
            resource: RESOURCE,
            subresource: verb.subresource(),
            name,
            namespace: None,
        },
    )
}

/// May the caller see every CSR (lists and watches unfiltered)? Admins, and callers RBAC
/// allows to list CSRs.
pub fn reads_all(id: &Identity, cfg: &AuthzConfig) -> bool {
    is_admin(id, cfg) || rbac_allows_csr(id, Verb::List, None, cfg)
}

/// kube-apiserver's CSR admission (`certificates/util.go` `IsAuthorizedForSignerName`): the
/// caller needs `verb` (`approve` or `sign`) on `certificates.k8s.io` `signers` with
/// resourceName the signer name or `<domain>/*`. Administrators always may.
pub fn may_use_signer(
    id: &Identity,
    verb: &str,
    signer_name: &str,
    cfg: &AuthzConfig,
) -> Result<(), Forbidden> {
    if is_admin(id, cfg) {
        return Ok(());
    }
    let wildcard = signer_name
        .split_once('/')
        .map(|(domain, _)| format!("{domain}/*"));
    let allowed = cfg.rbac.as_ref().is_some_and(|SharedRbac(rbac)| {
        std::iter::once(signer_name)
            .chain(wildcard.as_deref())
            .any(|name| {
                rbac.allows(
                    id,
                    &rbac::Request {
                        verb,
                        api_group: CERTIFICATES_GROUP,
                        resource: "signers",
                        subresource: None,
                        name: Some(name),
                        namespace: None,
                    },
                )
            })
    });
    if allowed {
        Ok(())
    } else {
        Err(Forbidden {
            message: format!(
                "user not permitted to {verb} requests with signerName {signer_name:?}"
            ),
        })
    }
}

/// Any other resource (Leases): administrators, or what RBAC grants. The message is
/// kube-apiserver's.
pub fn authorize_resource(
    id: &Identity,
    req: &rbac::Request<'_>,
    cfg: &AuthzConfig,
) -> Result<(), Forbidden> {
    let granted = cfg
        .rbac
        .as_ref()
        .is_some_and(|SharedRbac(rbac)| rbac.allows(id, req));
    if is_admin(id, cfg) || granted {
        return Ok(());
    }
    let object = match req.name {
        Some(n) => format!("{}.{} {n:?}", req.resource, req.api_group),
        None => format!("{}.{}", req.resource, req.api_group),
    };
    let scope = match req.namespace {
        Some(ns) => format!(" in the namespace {ns:?}"),
        None => " at the cluster scope".to_owned(),
    };
    Err(Forbidden {
        message: format!(
            "{object} is forbidden: User {:?} cannot {} resource {:?} in API group {:?}{scope}",
            id.user, req.verb, req.resource, req.api_group
        ),
    })
}

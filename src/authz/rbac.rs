//! Kubernetes RBAC from manifest files (`[auth] rbac_manifests`, external-signing mode): the
//! ClusterRoles, ClusterRoleBindings, Roles and RoleBindings of multi-document YAML, evaluated
//! with upstream's rules (`plugin/pkg/auth/authorizer/rbac/rbac.go`, `pkg/apis/rbac/v1/evaluation_helpers.go`):
//!
//! - a rule allows a request when its verbs, apiGroups, resources (`resource`,
//!   `resource/subresource`, `*`, `*/subresource`) and resourceNames (empty = any) all match;
//! - a ClusterRoleBinding grants its ClusterRole everywhere; a RoleBinding grants its Role or
//!   ClusterRole in its own namespace only;
//! - subjects: `User`, `Group` (every caller is in `system:authenticated`), `ServiceAccount`
//!   as user `system:serviceaccount:<namespace>:<name>`.
//!
//! Other kinds (ServiceAccount, Namespace, ...) are skipped. A binding to a role the files do
//! not define grants nothing (as upstream, where the role may appear later). Aggregated
//! ClusterRoles (`aggregationRule`) and `nonResourceURLs` are not evaluated (discovery is open
//! to every authenticated caller anyway).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use serde::Deserialize;

use crate::authn::Identity;

mod manifest_error;

pub use manifest_error::{ManifestError, ObjectError};

/// Largest manifest file read (deploy manifests are a few KiB; kubectl's own limit for a
/// single object is the apiserver's ≈ 3 MiB request limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Most documents across all manifest files (a cluster's whole bootstrap policy is ≈ 300).
pub const MAX_DOCUMENTS: usize = 10_000;
/// The group every authenticated caller is in.
const AUTHENTICATED: &str = "system:authenticated";
/// The user-name prefix of service accounts.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// The namespace kubectl applies namespaced objects to when none is given.
const DEFAULT_NAMESPACE: &str = "default";

/// Why a manifest could not be loaded (a configuration error, exit 64).
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The file could not be read.
    #[error("cannot read RBAC manifest {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_MANIFEST_BYTES`].
    #[error("RBAC manifest {path} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// More than [`MAX_DOCUMENTS`] documents.
    #[error("RBAC manifests hold more than {max} documents")]
    TooManyDocuments {
        /// The limit.
        max: usize,
    },
    /// A document is not valid YAML or not a valid object of its kind.
    #[error("RBAC manifest {path}, document {document}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based document number in the file.
        document: usize,
        /// What is wrong.
        source: ManifestError,
    },
}

/// One request as RBAC sees it (upstream's `authorizer.Attributes` for resource requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `approve`, `sign`, ...
    pub verb: &'a str,
    /// API group (`""` for core).
    pub api_group: &'a str,
    /// Resource, e.g. `certificatesigningrequests`.
    pub resource: &'a str,
    /// Subresource, e.g. `approval`.
    pub subresource: Option<&'a str>,
    /// Object name, when the request names one.
    pub name: Option<&'a str>,
    /// Namespace of a namespaced request (`None`: cluster-scoped).
    pub namespace: Option<&'a str>,
}

/// A binding resolved to its rules.
#[derive(Debug, Clone, PartialEq)]
struct Grant {
    /// `None`: cluster-wide (ClusterRoleBinding); `Some(ns)`: that namespace only.
    namespace: Option<String>,
    subjects: Vec<Subject>,
    rules: Vec<PolicyRule>,
}

/// The loaded policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rbac {
    grants: Vec<Grant>,
}

/// Just enough of a document to dispatch on.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    kind: Option<String>,
}

/// The objects found in the files, before bindings are resolved.
#[derive(Default)]
struct Objects {
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    cluster_bindings: Vec<ClusterRoleBinding>,
    bindings: Vec<RoleBinding>,
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

fn resource_matches(rule: &PolicyRule, req: &Request<'_>) -> bool {
    let combined = match req.subresource {
        Some(s) => format!("{}/{s}", req.resource),
        None => req.resource.to_owned(),
    };
    rule.resources.as_deref().unwrap_or(&[]).iter().any(|r| {
        r == "*"
            || *r == combined
            || req
                .subresource
                .is_some_and(|s| r.strip_prefix("*/") == Some(s))
    })
}

fn rule_allows(rule: &PolicyRule, req: &Request<'_>) -> bool {
    has(&rule.verbs, req.verb)
        && has(rule.api_groups.as_deref().unwrap_or(&[]), req.api_group)
        && resource_matches(rule, req)
        && match rule.resource_names.as_deref() {
            None | Some([]) => true,
            Some(names) => req.name.is_some_and(|n| names.iter().any(|x| x == n)),
        }
}

fn subject_matches(s: &Subject, id: &Identity, binding_ns: Option<&str>) -> bool {
    match s.kind.as_str() {
        "User" => s.name == id.user,
        "Group" => s.name == AUTHENTICATED || id.in_group(&s.name),
        "ServiceAccount" => {
            let ns = s.namespace.as_deref().or(binding_ns).unwrap_or_default();
            id.user
                .strip_prefix(SERVICE_ACCOUNT_PREFIX)
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(n, name)| n == ns && name == s.name)
        }
        _ => false,
    }
}

impl Rbac {
    /// Loads and resolves the manifests.
    pub fn load(paths: &[PathBuf]) -> Result<Rbac, RbacError> {
        let mut objects = Objects::default();
        let mut count = 0usize;
        for path in paths {
            let text = read_bounded(path)?;
            parse_into(&mut objects, path, &text, &mut count)?;
        }
        Ok(objects.resolve())
    }

    /// Parses manifest text (tests; `path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Rbac, RbacError> {
        let mut objects = Objects::default();
        parse_into(&mut objects, path, text, &mut 0)?;
        Ok(objects.resolve())
    }

    /// Whether some binding grants the request to the caller.
    pub fn allows(&self, id: &Identity, req: &Request<'_>) -> bool {
        self.grants.iter().any(|g| {
            let in_scope = match (&g.namespace, req.namespace) {
                (None, _) => true,
                (Some(ns), Some(r)) => ns == r,
                (Some(_), None) => false,
            };
            in_scope
                && g.subjects
                    .iter()
                    .any(|s| subject_matches(s, id, g.namespace.as_deref()))
                && g.rules.iter().any(|r| rule_allows(r, req))
        })
    }

    /// Number of resolved bindings (for the start-up log).
    pub fn bindings(&self) -> usize {
        self.grants.len()
    }
}

fn read_bounded(path: &Path) -> Result<String, RbacError> {
    use std::io::Read;
    let read = |source| RbacError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(RbacError::TooLarge {
            path: path.to_owned(),
            max: MAX_MANIFEST_BYTES,
        });
    }
    Ok(text)
}

fn parse_into(
    objects: &mut Objects,
    path: &Path,
    text: &str,
    count: &mut usize,
) -> Result<(), RbacError> {
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        *count += 1;
        if *count > MAX_DOCUMENTS {
            return Err(RbacError::TooManyDocuments { max: MAX_DOCUMENTS });
        }
        let invalid = |source: ManifestError| RbacError::Invalid {
            path: path.to_owned(),
            document: i + 1,
            source,
        };
        let value = serde_norway::Value::deserialize(doc).map_err(|e| invalid(e.into()))?;
        if value.is_null() {
            continue; // an empty document (`---` at the end)
        }
        let head: Head = serde_norway::from_value(value.clone()).map_err(|e| invalid(e.into()))?;
        let kind = head
            .kind
            .ok_or_else(|| invalid(ManifestError::MissingKind))?;
        objects
            .add(&kind, value)
            .map_err(|source| invalid(ManifestError::Object { kind, source }))?;
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(value: serde_norway::Value) -> Result<T, ObjectError> {
    Ok(serde_norway::from_value(value)?)
}

fn name_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<String, ObjectError> {
    meta.name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(ObjectError::NoName)
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

fn check_rules(rules: &[PolicyRule]) -> Result<(), ObjectError> {
    for (i, r) in rules.iter().enumerate() {
        if r.verbs.is_empty() {
            return Err(ObjectError::NoVerbs(i));
        }
        let resources = r.resources.as_deref().unwrap_or(&[]);
        let urls = r.non_resource_urls.as_deref().unwrap_or(&[]);
        if resources.is_empty() && urls.is_empty() {
            return Err(ObjectError::NoResources(i));
        }
        if !resources.is_empty() && r.api_groups.as_deref().unwrap_or(&[]).is_empty() {
            return Err(ObjectError::NoApiGroups(i));
        }
    }
    Ok(())
}

fn check_subjects(subjects: &[Subject]) -> Result<(), ObjectError> {
    for (i, s) in subjects.iter().enumerate() {
        if !matches!(s.kind.as_str(), "User" | "Group" | "ServiceAccount") {
            return Err(ObjectError::SubjectKind {
                index: i,
                kind: s.kind.clone(),
            });
        }
        if s.name.is_empty() {
            return Err(ObjectError::SubjectName(i));
        }
    }
    Ok(())
}

fn check_role_ref(r: &RoleRef, cluster: bool) -> Result<(), ObjectError> {
    if r.api_group != "rbac.authorization.k8s.io" {
        return Err(ObjectError::RoleRefGroup(r.api_group.clone()));
    }
    match r.kind.as_str() {
        "ClusterRole" => {}
        "Role" if !cluster => {}
        k => return Err(ObjectError::RoleRefKind(k.to_owned())),
    }
    if r.name.is_empty() {
        return Err(ObjectError::RoleRefName);
    }
    Ok(())
}

impl Objects {
    fn add(&mut self, kind: &str, value: serde_norway::Value) -> Result<(), ObjectError> {
        match kind {
            "ClusterRole" => {
                let o: ClusterRole = decode(value)?;
                let rules = o.rules.unwrap_or_default();
                check_rules(&rules)?;
                self.cluster_roles.insert(name_of(&o.metadata)?, rules);
            }
            "Role" => {
                let o: Role = decode(value)?;
                let rules = o.rules.unwrap_or_default();
                check_rules(&rules)?;
                let key = (namespace_of(&o.metadata), name_of(&o.metadata)?);
                self.roles.insert(key, rules);
            }
            "ClusterRoleBinding" => {
                let o: ClusterRoleBinding = decode(value)?;
                name_of(&o.metadata)?;
                check_role_ref(&o.role_ref, true)?;
                check_subjects(o.subjects.as_deref().unwrap_or(&[]))?;
                self.cluster_bindings.push(o);
            }
            "RoleBinding" => {
                let o: RoleBinding = decode(value)?;
                name_of(&o.metadata)?;
                check_role_ref(&o.role_ref, false)?;
                check_subjects(o.subjects.as_deref().unwrap_or(&[]))?;
                self.bindings.push(o);
            }
            "List" => {
                let items = value
                    .get("items")
                    .and_then(serde_norway::Value::as_sequence)
                    .cloned()
                    .unwrap_or_default();
                for item in items {
                    let k = item
                        .get("kind")
                        .and_then(serde_norway::Value::as_str)
                        .ok_or(ObjectError::ItemKind)?
                        .to_owned();
                    self.add(&k, item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn resolve(self) -> Rbac {
        let mut grants = Vec::new();
        for b in &self.cluster_bindings {
            if let Some(rules) = self.cluster_roles.get(&b.role_ref.name) {
                grants.push(Grant {
                    namespace: None,
                    subjects: b.subjects.clone().unwrap_or_default(),
                    rules: rules.clone(),
                });
            } else {
                tracing::warn!(role = %b.role_ref.name, "ClusterRoleBinding names a ClusterRole the manifests do not define; it grants nothing");
            }
        }
        for b in &self.bindings {
            let ns = namespace_of(&b.metadata);
            let rules = match b.role_ref.kind.as_str() {
                "Role" => self.roles.get(&(ns.clone(), b.role_ref.name.clone())),
                _ => self.cluster_roles.get(&b.role_ref.name),
            };
            if let Some(rules) = rules {
                grants.push(Grant {
                    namespace: Some(ns),
                    subjects: b.subjects.clone().unwrap_or_default(),
                    rules: rules.clone(),
                });
            } else {
                tracing::warn!(role = %b.role_ref.name, namespace = %ns, "RoleBinding names a role the manifests do not define; it grants nothing");
            }
        }
        Rbac { grants }
    }
}

#[cfg(test)]
mod tests;

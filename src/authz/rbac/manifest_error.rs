//! What is wrong with one document of an RBAC manifest.

/// Why a document of a manifest is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid YAML, or not a valid object of its kind.
    #[error("{0}")]
    Yaml(#[from] serde_norway::Error),
    /// The document has no `kind`.
    #[error("missing kind")]
    MissingKind,
    /// An object of a known kind breaks a rule.
    #[error("{kind}: {source}")]
    Object {
        /// The object's kind (`ClusterRole`, `RoleBinding`, ...).
        kind: String,
        /// The rule it breaks.
        source: ObjectError,
    },
}

/// The rule an RBAC object breaks (upstream's validation, the parts the authorizer relies on).
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The object does not decode as its kind.
    #[error("{0}")]
    Decode(#[from] serde_norway::Error),
    /// `metadata.name` is missing or empty.
    #[error("metadata.name is required")]
    NoName,
    /// A rule has no verbs.
    #[error("rules[{0}].verbs: at least one verb is required")]
    NoVerbs(usize),
    /// A rule names neither resources nor non-resource URLs.
    #[error("rules[{0}]: resources or nonResourceURLs is required")]
    NoResources(usize),
    /// A rule names resources without API groups.
    #[error("rules[{0}].apiGroups: required with resources (\"\" for the core group)")]
    NoApiGroups(usize),
    /// A subject's kind is not User, Group or ServiceAccount.
    #[error("subjects[{index}].kind: unsupported value {kind:?}")]
    SubjectKind {
        /// Position in `subjects`.
        index: usize,
        /// The kind given.
        kind: String,
    },
    /// A subject has no name.
    #[error("subjects[{0}].name: required")]
    SubjectName(usize),
    /// `roleRef.apiGroup` is not `rbac.authorization.k8s.io`.
    #[error("roleRef.apiGroup: unsupported value {0:?}")]
    RoleRefGroup(String),
    /// `roleRef.kind` is not a role kind this binding may name.
    #[error("roleRef.kind: unsupported value {0:?}")]
    RoleRefKind(String),
    /// `roleRef.name` is empty.
    #[error("roleRef.name: required")]
    RoleRefName,
    /// An item of a `List` has no kind.
    #[error("items: missing kind")]
    ItemKind,
}

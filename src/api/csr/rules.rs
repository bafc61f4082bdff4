//! The server-side rules of reference §1.2–§1.5: what a new CSR must look like, and what each
//! update path may change. Pure functions over the k8s-openapi types.

use crate::api::error::{ApiError, Cause, invalid};
use crate::conditions::ConditionType;
use crate::issue::CsrRequest;
use crate::issue::names::MAX_SIGNER_NAME_LEN;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Longest accepted CSR name: the DNS-1123 subdomain length Kubernetes uses for object names.
pub const MAX_NAME_LEN: usize = 253;
/// generateName keeps at most this many characters of the base (upstream `names.go`).
pub const GENERATE_NAME_BASE_MAX: usize = 58;
/// The usages v1 accepts (reference §1.3).
pub const KNOWN_USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

fn cause(reason: &'static str, field: &str, message: impl Into<String>) -> Cause {
    Cause {
        reason,
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Why a CSR name is refused (the message of the 422's cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("name or generateName is required")]
    Empty,
    /// Longer than [`MAX_NAME_LEN`].
    #[error("must be no more than {MAX_NAME_LEN} characters")]
    TooLong,
    /// `.` or `..`.
    #[error("may not be '.' or '..'")]
    Dots,
    /// A byte outside `[A-Za-z0-9._:-]`.
    #[error("may contain only letters, digits, '.', '_', '-' and ':'")]
    Character,
}

/// A CSR name: non-empty, ≤ 253, printable ASCII from the set real clients use
/// (`[A-Za-z0-9._:-]`, the kubelet's `node-csr-<base64url>` included), not `.` or `..`.
/// Stricter than upstream, which only forbids `/` and `%`.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
    {
        return Err(NameError::Character);
    }
    Ok(())
}

fn dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn signer_name_causes(name: &str, out: &mut Vec<Cause>) {
    const F: &str = "spec.signerName";
    if name.is_empty() {
        out.push(cause("FieldValueRequired", F, "Required value"));
        return;
    }
    if name.len() > MAX_SIGNER_NAME_LEN {
        out.push(cause(
            "FieldValueTooLong",
            F,
            format!("must be no more than {MAX_SIGNER_NAME_LEN} characters"),
        ));
        return;
    }
    let mut parts = name.splitn(2, '/');
    let domain = parts.next().unwrap_or("");
    let path = parts.next();
    let ok = match path {
        Some(p) if !p.contains('/') => {
            domain.len() <= 253
                && domain.contains('.')
                && domain.split('.').all(dns_label)
                && !p.is_empty()
                && p.len() <= 317
                && p.split('.').all(dns_label)
        }
        _ => false,
    };
    if !ok {
        out.push(cause(
            "FieldValueInvalid",
            F,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
    } else if name == "kubernetes.io/legacy-unknown" {
        out.push(cause(
            "FieldValueInvalid",
            F,
            "the legacy signerName is not allowed via this API version",
        ));
    }
}

/// Validates a new CSR's spec (reference §1.3). Returns the one parse of its request
/// ([`CsrRequest::parse`]): every later step reads that value, none parses the PEM again.
pub fn validate_new(csr: &CertificateSigningRequest, name: &str) -> Result<CsrRequest, ApiError> {
    let mut causes = Vec::new();
    let spec = &csr.spec;
    let request = match CsrRequest::parse(&spec.request.0) {
        Ok(req) => Some(req),
        Err(e) => {
            causes.push(cause("FieldValueInvalid", "spec.request", e.to_string()));
            None
        }
    };
    match spec.usages.as_deref() {
        None | Some([]) => {
            causes.push(cause("FieldValueRequired", "spec.usages", "Required value"))
        }
        Some(usages) => {
            for (i, u) in usages.iter().enumerate() {
                let f = format!("spec.usages[{i}]");
                if !KNOWN_USAGES.contains(&u.as_str()) {
                    causes.push(cause("FieldValueNotSupported", &f, "unsupported usage"));
                } else if usages.iter().take(i).any(|p| p == u) {
                    causes.push(cause("FieldValueDuplicate", &f, "Duplicate value"));
                }
            }
        }
    }
    signer_name_causes(&spec.signer_name, &mut causes);
    if let Some(s) = spec.expiration_seconds
        && s < 600
    {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.expirationSeconds",
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    match request {
        Some(request) if causes.is_empty() => Ok(request),
        _ => Err(ApiError::Invalid {
            name: name.to_owned(),
            causes,
        }),
    }
}

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

/// Checks a condition list (reference §1.3) and that no Approved/Denied/Failed was removed.
fn check_conditions(
    name: &str,
    new: &[CertificateSigningRequestCondition],
    old: &[CertificateSigningRequestCondition],
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    for (i, c) in new.iter().enumerate() {
        let f = format!("status.conditions[{i}]");
        if c.type_.is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                &format!("{f}.type"),
                "Required value",
            ));
        }
        let terminal = ConditionType::of(c).is_some();
        match c.status.as_str() {
            "True" => {}
            "False" | "Unknown" if !terminal => {}
            "" => causes.push(cause(
                "FieldValueRequired",
                &format!("{f}.status"),
                "Required value",
            )),
            _ => causes.push(cause(
                "FieldValueNotSupported",
                &format!("{f}.status"),
                "supported values: \"True\"",
            )),
        }
        if new.iter().take(i).any(|p| p.type_ == c.type_) {
            causes.push(cause(
                "FieldValueDuplicate",
                &format!("{f}.type"),
                "Duplicate value",
            ));
        }
    }
    let has = |t: ConditionType| new.iter().any(|c| t.is(c));
    if has(ConditionType::Approved) && has(ConditionType::Denied) {
        causes.push(cause(
            "FieldValueInvalid",
            "status.conditions",
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
    for t in old.iter().filter_map(ConditionType::of) {
        if !has(t) {
            causes.push(cause(
                "FieldValueForbidden",
                "status.conditions",
                format!("updates may not remove a condition of type \"{t}\""),
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            name: name.to_owned(),
            causes,
        })
    }
}

/// Fills lastUpdateTime / lastTransitionTime when absent (keeping the old transition time for a
/// condition whose type and status did not change).
fn stamp(
    new: &mut [CertificateSigningRequestCondition],
    old: &[CertificateSigningRequestCondition],
    now: &Time,
) {
    for c in new.iter_mut() {
        if c.last_update_time.is_none() {
            c.last_update_time = Some(now.clone());
        }
        if c.last_transition_time.is_none() {
            let kept = old
                .iter()
                .find(|o| o.type_ == c.type_ && o.status == c.status)
                .and_then(|o| o.last_transition_time.clone());
            c.last_transition_time = Some(kept.unwrap_or_else(|| now.clone()));
        }
    }
}

fn keep_metadata(stored: &mut CertificateSigningRequest, body: &CertificateSigningRequest) {
    stored.metadata.labels = body.metadata.labels.clone();
    stored.metadata.annotations = body.metadata.annotations.clone();
}

/// PUT `/approval`: keeps the body's conditions (after the rules) and metadata; spec and
/// certificate stay as stored.
pub fn apply_approval(
    stored: &mut CertificateSigningRequest,
    body: &CertificateSigningRequest,
    now: &Time,
) -> Result<(), ApiError> {
    let name = stored.metadata.name.clone().unwrap_or_default();
    let old = conditions(stored).to_vec();
    let mut new = conditions(body).to_vec();
    check_conditions(&name, &new, &old)?;
    stamp(&mut new, &old, now);
    keep_metadata(stored, body);
    stored
        .status
        .get_or_insert_with(Default::default)
        .conditions = Some(new);
    Ok(())
}

/// PUT `/status`: conditions other than Approved/Denied may change (Approved/Denied are copied
/// back from the stored object); `status.certificate` may not change through the API at all —
/// only the appliance's own signer writes it.
pub fn apply_status(
    stored: &mut CertificateSigningRequest,
    body: &CertificateSigningRequest,
    now: &Time,
) -> Result<(), ApiError> {
    let name = stored.metadata.name.clone().unwrap_or_default();
    let old_cert = stored
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .filter(|c| !c.0.is_empty());
    let new_cert = body
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .filter(|c| !c.0.is_empty());
    if old_cert != new_cert {
        return Err(ApiError::Forbidden {
            message: format!(
                "certificatesigningrequests \"{name}\": status.certificate is written only by the appliance's signer"
            ),
        });
    }
    let old = conditions(stored).to_vec();
    let mut new: Vec<_> = conditions(body)
        .iter()
        .filter(|c| !ConditionType::of(c).is_some_and(ConditionType::is_approval))
        .cloned()
        .collect();
    new.extend(
        old.iter()
            .filter(|c| ConditionType::of(c).is_some_and(ConditionType::is_approval))
            .cloned(),
    );
    check_conditions(&name, &new, &old)?;
    stamp(&mut new, &old, now);
    keep_metadata(stored, body);
    stored
        .status
        .get_or_insert_with(Default::default)
        .conditions = Some(new);
    Ok(())
}

/// PUT on the main resource: only labels and annotations change; spec and status are forced
/// back to the stored values.
pub fn apply_update(stored: &mut CertificateSigningRequest, body: &CertificateSigningRequest) {
    keep_metadata(stored, body);
}

/// For 422s from this module where only a name is known.
pub fn invalid_name(name: &str, message: String) -> ApiError {
    invalid(name, "FieldValueInvalid", "metadata.name", message)
}

//! One profile type per signer name: what each signer accepts (usages, subject, SANs, key)
//! and what its certificates carry.

use super::csr::{ParsedCsr, San};
use super::error::{Rule, SignerValidationFailure};
use super::names::{NodeName, SignerName, is_host_name};
use super::subject::{StringType, node_subject, one_common_name, single_valued_rdns, string_types};
use super::usage::{Usage, UsageSet};

/// The identity a validated CSR names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectIdentity {
    /// A node (`CN=system:node:<name>`, `O=system:nodes`).
    Node(NodeName),
    /// Another API client (`kube-apiserver-client`), by CN.
    Client {
        /// The common name.
        common_name: String,
    },
}

/// Which extended key usage a profile issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// id-kp-clientAuth.
    ClientAuth,
    /// id-kp-serverAuth.
    ServerAuth,
}

/// Which SANs a profile copies into the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanPolicy {
    /// No SAN of any type may be requested.
    None,
    /// At least one DNS or IP SAN; no other type.
    DnsOrIpRequired,
}

/// The rules of one signer name.
pub trait SignerProfile: Send + Sync {
    /// The signer name.
    fn signer_name(&self) -> SignerName;
    /// The EKU issued.
    fn purpose(&self) -> Purpose;
    /// The SAN policy.
    fn san_policy(&self) -> SanPolicy;
    /// The subject rule; returns the identity the CSR names.
    fn check_subject(&self, csr: &ParsedCsr) -> Result<SubjectIdentity, SignerValidationFailure>;

    /// The allowed usage sets: {digital signature, <purpose>} ∪ optionally {key encipherment}
    /// (reference §2.1, exact sets).
    fn check_usages(&self, usages: &UsageSet) -> Result<(), SignerValidationFailure> {
        let purpose = match self.purpose() {
            Purpose::ClientAuth => Usage::ClientAuth,
            Purpose::ServerAuth => Usage::ServerAuth,
        };
        let allowed = [Usage::DigitalSignature, Usage::KeyEncipherment, purpose];
        let ok = usages.contains(Usage::DigitalSignature)
            && usages.contains(purpose)
            && usages.iter().all(|u| allowed.contains(&u));
        if ok {
            return Ok(());
        }
        Err(SignerValidationFailure::new(
            Rule::Usages,
            format!("[{}]", usages.describe()),
            format!("[digital signature, {purpose}] + optional key encipherment"),
        ))
    }

    /// The SAN rule.
    fn check_sans(&self, sans: &[San]) -> Result<(), SignerValidationFailure> {
        match self.san_policy() {
            SanPolicy::None => match sans.first() {
                None => Ok(()),
                Some(s) => Err(SignerValidationFailure::new(
                    Rule::SubjectAltNames,
                    s.describe(),
                    "no subject alternative names",
                )),
            },
            SanPolicy::DnsOrIpRequired => {
                if sans.is_empty() {
                    return Err(SignerValidationFailure::new(
                        Rule::SubjectAltNames,
                        "none",
                        "at least one DNS or IP SAN",
                    ));
                }
                for s in sans {
                    let ok = match s {
                        San::Dns(d) => is_host_name(d),
                        San::Ip(_) => true,
                        _ => false,
                    };
                    if !ok {
                        return Err(SignerValidationFailure::new(
                            Rule::SubjectAltNames,
                            s.describe(),
                            "DNS host names and IP addresses only",
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// All of the profile's rules, in order: CA request, usages, subject, SANs.
    fn check(
        &self,
        csr: &ParsedCsr,
        usages: &UsageSet,
    ) -> Result<SubjectIdentity, SignerValidationFailure> {
        if csr.requests_ca {
            return Err(SignerValidationFailure::new(
                Rule::BasicConstraints,
                "CA:TRUE",
                "end-entity certificates only",
            ));
        }
        self.check_usages(usages)?;
        let identity = self.check_subject(csr)?;
        self.check_sans(&csr.sans)?;
        Ok(identity)
    }
}

/// `kubernetes.io/kube-apiserver-client-kubelet`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeletClientProfile;

impl SignerProfile for KubeletClientProfile {
    fn signer_name(&self) -> SignerName {
        SignerName::KubeletClient
    }
    fn purpose(&self) -> Purpose {
        Purpose::ClientAuth
    }
    fn san_policy(&self) -> SanPolicy {
        SanPolicy::None
    }
    fn check_subject(&self, csr: &ParsedCsr) -> Result<SubjectIdentity, SignerValidationFailure> {
        node_subject(&csr.subject).map(SubjectIdentity::Node)
    }
}

/// `kubernetes.io/kubelet-serving`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeletServingProfile;

impl SignerProfile for KubeletServingProfile {
    fn signer_name(&self) -> SignerName {
        SignerName::KubeletServing
    }
    fn purpose(&self) -> Purpose {
        Purpose::ServerAuth
    }
    fn san_policy(&self) -> SanPolicy {
        SanPolicy::DnsOrIpRequired
    }
    fn check_subject(&self, csr: &ParsedCsr) -> Result<SubjectIdentity, SignerValidationFailure> {
        node_subject(&csr.subject).map(SubjectIdentity::Node)
    }
}

/// `kubernetes.io/kube-apiserver-client` (off unless enabled; admin approval only). Stricter
/// than upstream: no SANs (a client certificate needs none), exactly one CN, every subject
/// value a string of a supported type (admission reads each one decoded).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiserverClientProfile;

impl SignerProfile for ApiserverClientProfile {
    fn signer_name(&self) -> SignerName {
        SignerName::ApiserverClient
    }
    fn purpose(&self) -> Purpose {
        Purpose::ClientAuth
    }
    fn san_policy(&self) -> SanPolicy {
        SanPolicy::None
    }
    fn check_subject(&self, csr: &ParsedCsr) -> Result<SubjectIdentity, SignerValidationFailure> {
        single_valued_rdns(&csr.subject)?;
        string_types(&csr.subject, &StringType::ALL)?;
        one_common_name(&csr.subject).map(|common_name| SubjectIdentity::Client { common_name })
    }
}

/// The profile for a signer name.
pub fn profile_for(name: SignerName) -> &'static dyn SignerProfile {
    match name {
        SignerName::KubeletClient => &KubeletClientProfile,
        SignerName::KubeletServing => &KubeletServingProfile,
        SignerName::ApiserverClient => &ApiserverClientProfile,
    }
}

#[cfg(test)]
mod tests;

//! Unit tests for `profile.rs`.

use super::*;

fn set(u: &[Usage]) -> UsageSet {
    UsageSet::of(u)
}

#[test]
fn usage_sets_are_exact() {
    use Usage::*;
    let c = KubeletClientProfile;
    assert!(
        c.check_usages(&set(&[DigitalSignature, ClientAuth]))
            .is_ok()
    );
    assert!(
        c.check_usages(&set(&[DigitalSignature, KeyEncipherment, ClientAuth]))
            .is_ok()
    );
    for bad in [
        vec![ClientAuth],
        vec![DigitalSignature],
        vec![DigitalSignature, ClientAuth, ServerAuth],
        vec![DigitalSignature, ClientAuth, CertSign],
        vec![Any],
        vec![Signing, ClientAuth],
    ] {
        let e = c.check_usages(&set(&bad)).unwrap_err();
        assert_eq!(e.rule, Rule::Usages, "{bad:?}");
    }
    let s = KubeletServingProfile;
    assert!(
        s.check_usages(&set(&[DigitalSignature, ServerAuth]))
            .is_ok()
    );
    assert!(
        s.check_usages(&set(&[DigitalSignature, ClientAuth]))
            .is_err()
    );
}

#[test]
fn san_policies() {
    let dns = San::Dns("node1".into());
    let ip = San::Ip("10.0.0.1".parse().unwrap());
    let c = KubeletClientProfile;
    assert!(c.check_sans(&[]).is_ok());
    assert!(c.check_sans(std::slice::from_ref(&dns)).is_err());
    let s = KubeletServingProfile;
    assert!(s.check_sans(&[]).is_err());
    assert!(s.check_sans(&[dns.clone(), ip]).is_ok());
    assert!(
        s.check_sans(&[dns.clone(), San::Email("a@b.c".into())])
            .is_err()
    );
    assert!(s.check_sans(&[San::Uri("https://x".into())]).is_err());
    assert!(s.check_sans(&[San::Other]).is_err());
    assert!(s.check_sans(&[San::Dns("bad_name".into())]).is_err());
}

use std::path::Path;
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;

use super::*;

const SEED_TOKEN: &str = "02b50b05283e98dd0fd71db496ef01e8";
const DAY: Duration = Duration::from_secs(24 * 3600);

fn authenticator(csv: &str) -> (tempfile::TempDir, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    let st = StaticTokens::parse(csv.as_bytes(), Path::new("t.csv")).unwrap();
    let bt = BootstrapTokens::open(&dir.path().join(DB_FILE_NAME)).unwrap();
    (dir, Authenticator::from_parts(st, bt))
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

#[test]
fn static_token_identity() {
    let (_d, a) = authenticator(&format!(
        "{SEED_TOKEN},kubelet-bootstrap,10001,\"system:kubelet-bootstrap\"\n"
    ));
    let now = SystemTime::now();
    let AuthnOutcome::Authenticated(id) = a.authenticate(None, Some(&bearer(SEED_TOKEN)), now)
    else {
        panic!("not authenticated");
    };
    assert_eq!(id.user, "kubelet-bootstrap");
    assert_eq!(id.uid, "10001");
    assert_eq!(
        id.groups,
        vec![
            "system:kubelet-bootstrap".to_owned(),
            AUTHENTICATED_GROUP.to_owned()
        ]
    );
    assert_eq!(id.method, AuthMethod::StaticToken);
    assert_eq!(
        a.authenticate(None, Some(&bearer("02b50b05283e98dd0fd71db496ef01e9")), now),
        AuthnOutcome::Rejected(AuthnFailure::UnknownToken)
    );
}

#[test]
fn anonymous_and_malformed() {
    let (_d, a) = authenticator("");
    let now = SystemTime::now();
    assert_eq!(a.authenticate(None, None, now), AuthnOutcome::Anonymous);
    assert_eq!(
        a.authenticate(Some(&[]), None, now),
        AuthnOutcome::Anonymous
    );
    assert_eq!(
        a.authenticate(None, Some(b"Basic Zm9vOmJhcg=="), now),
        AuthnOutcome::Rejected(AuthnFailure::MalformedHeader)
    );
}

#[test]
fn bootstrap_token_identity_expiry_and_secret() {
    let (_d, a) = authenticator("");
    let now = SystemTime::now();
    let (id, token) = a
        .bootstrap_tokens()
        .create(
            DAY,
            vec!["system:bootstrappers:kubeadm:default-node-token".into()],
            "node pool".into(),
            vec!["pool-a-*".into()],
            now,
        )
        .unwrap();
    let header = bearer(token.expose_secret());
    let AuthnOutcome::Authenticated(ident) = a.authenticate(None, Some(&header), now) else {
        panic!("not authenticated");
    };
    assert_eq!(ident.user, format!("system:bootstrap:{id}"));
    assert_eq!(ident.uid, "");
    assert_eq!(
        ident.groups,
        vec![
            "system:bootstrappers".to_owned(),
            "system:bootstrappers:kubeadm:default-node-token".to_owned(),
            AUTHENTICATED_GROUP.to_owned()
        ]
    );
    let AuthMethod::BootstrapToken(info) = &ident.method else {
        panic!("wrong method");
    };
    assert!(info.allows_node("pool-a-1"));
    assert!(!info.allows_node("pool-b-1"));
    assert_eq!(
        a.authenticate(None, Some(&header), now + DAY),
        AuthnOutcome::Rejected(AuthnFailure::Expired)
    );
    let wrong = bearer(&format!("{id}.aaaaaaaaaaaaaaaa"));
    assert_eq!(
        a.authenticate(None, Some(&wrong), now),
        AuthnOutcome::Rejected(AuthnFailure::WrongSecret)
    );
    assert!(a.bootstrap_tokens().delete(&id).unwrap());
    assert_eq!(
        a.authenticate(None, Some(&header), now),
        AuthnOutcome::Rejected(AuthnFailure::UnknownToken)
    );
}

#[test]
fn static_token_shaped_like_a_bootstrap_token_still_works() {
    let (_d, a) = authenticator("abcdef.0123456789abcdef,legacy,5,\n");
    let out = a.authenticate(
        None,
        Some(&bearer("abcdef.0123456789abcdef")),
        SystemTime::now(),
    );
    assert!(matches!(out, AuthnOutcome::Authenticated(i) if i.user == "legacy"));
}

#[test]
fn unbound_token_allows_any_node() {
    let info = BootstrapTokenInfo {
        id: BootstrapTokenId::parse("abcdef").unwrap(),
        node_name_patterns: vec![],
    };
    assert!(info.allows_node("anything"));
}

#[test]
fn authenticator_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Authenticator>();
}

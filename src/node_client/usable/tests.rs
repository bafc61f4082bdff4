use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::*;
use crate::node_client::certdir::CertStore;
use crate::node_client::key::NodeKey;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (key `name.key`, certificate `name.crt`) named `CN=cn`.
fn ca(dir: &Path, name: &str, cn: &str) -> Vec<u8> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "3",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    std::fs::read(dir.join(format!("{name}.crt"))).unwrap()
}

/// A node client certificate for a fresh key, signed by CA `name`, stored and loaded back.
fn pair(dir: &Path, name: &str) -> StoredPair {
    let key = NodeKey::generate().unwrap();
    std::fs::write(dir.join("leaf.key"), key.to_pem().unwrap().as_bytes()).unwrap();
    std::fs::write(
        dir.join("ext.cnf"),
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/O=system:nodes/CN=system:node:n",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            &format!("{name}.crt"),
            "-CAkey",
            &format!("{name}.key"),
            "-set_serial",
            "7",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "leaf.crt",
        ],
    );
    let cert = std::fs::read_to_string(dir.join("leaf.crt")).unwrap();
    let store = CertStore::new(&dir.join("pki"), "kubelet-client");
    store.update(&cert, &key, SystemTime::now()).unwrap();
    store.load_current().unwrap()
}

#[test]
fn a_valid_chained_certificate_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = ca(dir.path(), "ca", "test-ca");
    let p = pair(dir.path(), "ca");
    assert_eq!(check_client(Some(&p), &bundle, SystemTime::now()), Ok(()));
}

#[test]
fn missing_expired_and_not_yet_valid_are_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = ca(dir.path(), "ca", "test-ca");
    let p = pair(dir.path(), "ca");
    assert_eq!(
        check_client(None, &bundle, SystemTime::now()),
        Err(Unusable::Missing)
    );
    let (nb, na) = p.validity();
    assert!(matches!(
        check_client(Some(&p), &bundle, na),
        Err(Unusable::Expired { .. })
    ));
    assert!(matches!(
        check_client(Some(&p), &bundle, nb - Duration::from_secs(1)),
        Err(Unusable::NotYetValid { .. })
    ));
    let msg = check_client(Some(&p), &bundle, na + Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("expired at 20"), "{msg}");
}

#[test]
fn a_replaced_ca_of_the_same_name_does_not_chain_an_unknown_issuer_is_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    let _old = ca(dir.path(), "old", "test-ca");
    let p = pair(dir.path(), "old");
    // The appliance was re-initialised: a new CA key under the same name.
    let replaced = ca(dir.path(), "new", "test-ca");
    let err = check_client(Some(&p), &replaced, SystemTime::now()).unwrap_err();
    assert!(matches!(err, Unusable::NotChaining { .. }), "{err}");
    // A bundle without the issuer (an operator TLS CA): cannot tell, so it is used.
    let other = ca(dir.path(), "other", "operator-tls-ca");
    assert_eq!(check_client(Some(&p), &other, SystemTime::now()), Ok(()));
}

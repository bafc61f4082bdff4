use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A self-signed certificate for `key`, made by openssl (a real outside tool).
pub(crate) fn self_signed(key: &NodeKey) -> String {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k.pem");
    let c = dir.path().join("c.pem");
    std::fs::write(&k, key.to_pem().unwrap().as_bytes()).unwrap();
    let st = std::process::Command::new("openssl")
        .args(["req", "-new", "-x509", "-days", "1", "-subj"])
        .arg("/O=system:nodes/CN=system:node:n")
        .arg("-key")
        .arg(&k)
        .arg("-out")
        .arg(&c)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read_to_string(&c).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + secs)
}

#[test]
fn update_writes_a_private_pair_and_points_current_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(&dir.path().join("pki"), "kubelet-client");
    let key = NodeKey::generate().unwrap();
    let cert = self_signed(&key);
    let path = store.update(&cert, &key, t(0)).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(name, format!("kubelet-client-{}.pem", timestamp(t(0))));
    assert!(store.is_timestamped(&name));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(text.contains(concat!("-----BEGIN EC ", "PRIVATE KEY-----")));
    assert_eq!(
        std::fs::read_link(store.current_path()).unwrap(),
        PathBuf::from(&name)
    );
    let pair = store.load_current().unwrap();
    assert_eq!(pair.key.public_point(), key.public_point());
    assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(pair.valid_at(SystemTime::now()));
    assert!(!pair.valid_at(SystemTime::now() + Duration::from_secs(3 * 86400)));
    // Only the pair and the link: no temporary or `-updated` leftovers.
    assert_eq!(
        names(store.dir()),
        vec![name, "kubelet-client-current.pem".to_string()]
    );
    let dmode = std::fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dmode, 0o700);
}

#[test]
fn timestamp_is_the_kubelet_layout_in_utc() {
    assert_eq!(
        timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3_723)),
        "2026-01-01-01-02-03"
    );
}

#[test]
fn old_files_are_bounded_and_the_current_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path(), "kubelet-client");
    let mut last = PathBuf::new();
    for i in 0..(KEEP_FILES as u64 + 3) {
        let key = NodeKey::generate().unwrap();
        last = store.update(&self_signed(&key), &key, t(i)).unwrap();
    }
    let files = names(dir.path());
    assert_eq!(files.len(), KEEP_FILES + 1, "{files:?}");
    assert!(files.contains(&format!("kubelet-client-{}.pem", timestamp(t(7)))));
    assert!(!files.contains(&format!("kubelet-client-{}.pem", timestamp(t(2)))));
    assert_eq!(
        dir.path()
            .join(std::fs::read_link(store.current_path()).unwrap()),
        last
    );
    // A serving store in the same dir neither sees nor removes client files.
    let serving = CertStore::new(dir.path(), "kubelet-server");
    assert_eq!(serving.prune(0).unwrap(), 0);
    assert_eq!(names(dir.path()).len(), KEEP_FILES + 1);
    assert!(serving.load_current().is_none());
}

#[test]
fn a_certificate_for_another_key_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path(), "kubelet-client");
    let key = NodeKey::generate().unwrap();
    let other = NodeKey::generate().unwrap();
    assert!(matches!(
        store.update(&self_signed(&other), &key, t(0)),
        Err(CertDirError::KeyMismatch)
    ));
    assert!(matches!(
        store.update("not pem", &key, t(0)),
        Err(CertDirError::BadCertificate { .. })
    ));
    assert!(names(dir.path()).is_empty());
}

#[test]
fn a_failed_symlink_swap_leaves_no_new_file_and_keeps_the_old_pair() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path(), "kubelet-client");
    let key = NodeKey::generate().unwrap();
    let first = store.update(&self_signed(&key), &key, t(0)).unwrap();
    // Make the swap fail: the current link replaced by a non-empty directory.
    std::fs::remove_file(store.current_path()).unwrap();
    std::fs::create_dir(store.current_path()).unwrap();
    std::fs::write(store.current_path().join("x"), b"x").unwrap();
    let key2 = NodeKey::generate().unwrap();
    let err = store.update(&self_signed(&key2), &key2, t(1)).unwrap_err();
    assert!(
        matches!(err, CertDirError::Io { op: "rename", .. }),
        "{err}"
    );
    assert_eq!(
        names(dir.path()),
        vec![
            first.file_name().unwrap().to_str().unwrap().to_string(),
            "kubelet-client-current.pem".to_string(),
        ]
    );
}

#[test]
fn an_unusable_cert_dir_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let store = CertStore::new(&file.join("pki"), "kubelet-client");
    let key = NodeKey::generate().unwrap();
    assert!(matches!(
        store.update(&self_signed(&key), &key, t(0)),
        Err(CertDirError::Io { op: "create", .. })
    ));
    assert!(store.pending_key().is_err());
    assert_eq!(names(dir.path()), vec!["plain-file".to_string()]);
}

#[test]
fn the_pending_key_survives_a_restart_and_is_removed_after_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = CertStore::new(dir.path(), "kubelet-client");
    let a = store.pending_key().unwrap();
    let b = store.pending_key().unwrap();
    assert_eq!(a.public_point(), b.public_point());
    let p = dir.path().join(PENDING_CLIENT_KEY);
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    store.remove_pending_key();
    assert!(!p.exists());
    let c = store.pending_key().unwrap();
    assert_ne!(a.public_point(), c.public_point());
}

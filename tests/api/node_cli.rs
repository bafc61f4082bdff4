//! `kubesigner node disable|enable|forget NAME --config FILE` changes what the approver reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use kubesigner::store::{IssuedRecord, Store};

fn node(cfg: &std::path::Path, args: &[&str]) -> bool {
    Command::new(env!("CARGO_BIN_EXE_kubesigner"))
        .arg("node")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .status()
        .unwrap()
        .success()
}

#[test]
fn disable_enable_forget() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kubesigner.toml");
    std::fs::write(&cfg, "data_dir = \"data\"\n[signer]\nkey = \"pkcs11:token=t;object=ca\"\n[ca]\ncert_file = \"ca.pem\"\n").unwrap();
    assert!(node(&cfg, &["disable", "node1"]));
    let store = Store::open(&dir.path().join("data")).unwrap();
    assert!(store.node_state("node1", 0).unwrap().disabled);
    assert!(node(&cfg, &["enable", "node1"]));
    assert!(!store.node_state("node1", 0).unwrap().disabled);
    store
        .create(Default::default(), &Default::default(), "t")
        .unwrap();
    store
        .update("", None, "t", kubesigner::audit::Kind::Issue, |_| {
            Ok::<_, ()>(Some(IssuedRecord {
                node_name: "node1".into(),
                serial_hex: "01".into(),
                not_after_unix: i64::MAX,
                issued_unix: 0,
            }))
        })
        .unwrap();
    assert!(store.node_state("node1", 0).unwrap().unexpired_certificate);
    assert!(node(&cfg, &["forget", "node1"]));
    assert!(!store.node_state("node1", 0).unwrap().unexpired_certificate);
    assert!(
        !node(&cfg, &["disable", "Not/A/Node"]),
        "invalid names are refused"
    );
}

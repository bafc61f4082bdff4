//! Unit tests for `reload.rs`: which changed keys need a restart.

use super::*;

fn cfg(extra: &str) -> Config {
    let text = format!(
        "data_dir = \"d\"\n[signer]\nkey = \"pkcs11:token=t\"\n[ca]\ncert_file = \"c\"\n{extra}"
    );
    Config::parse(&text).unwrap()
}

#[test]
fn reloadable_keys_do_not_ask_for_a_restart() {
    let a = cfg("[auth]\ntoken_auth_file = \"a.csv\"\n");
    let b = cfg("[auth]\ntoken_auth_file = \"b.csv\"\nclient_ca_files = [\"x.crt\"]\n");
    assert!(restart_keys(&a, &b).is_empty());
}

#[test]
fn other_changes_are_named() {
    let a = cfg("");
    let b = cfg(
        "[server]\nmax_watches = 7\n[auth]\nadmin_groups = [\"ops\"]\n[audit]\ncheckpoint_every = 5\n",
    );
    assert_eq!(
        restart_keys(&a, &b),
        [
            "[server]",
            "[auth] (other than token_auth_file, client_ca_files)",
            "[audit]"
        ]
    );
}

//! Recovery without a restart: a `p11-kit server` in front of SoftHSM is killed and restarted
//! at the same address; the signer reports not ready while it is down, fails fast, and signs
//! again by itself within seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::{signer_support, tools};

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubesigner::signer::{
    Pkcs11Uri, Settings, SignerError, SignerStatus, TokenSigner, UriOrigin, login_calls,
};
use signer_support::TokenEnv;

fn start_server(tok: &TokenEnv, socket: &Path) -> Child {
    let _ = std::fs::remove_file(socket);
    let child = Command::new("p11-kit")
        .args(["server", "-f", "-n"])
        .arg(socket)
        .args(["--provider", &tok.module])
        .arg(format!("pkcs11:token={}", tok.label))
        .env("SOFTHSM2_CONF", &tok.conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), || socket.exists());
    child
}

/// Kills the server and the per-connection process it forked (its own process group).
fn stop_server(mut server: Child) {
    let group = format!("-{}", server.id());
    let status = Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .unwrap();
    assert!(status.success());
    server.wait().unwrap();
}

/// [`signer_support::tools::wait_for`], returning how long it took.
fn wait_for(limit: Duration, f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    signer_support::tools::wait_for("the signer condition", limit, f);
    start.elapsed()
}

#[test]
fn signing_comes_back_after_the_token_server_restarts() {
    if let Some(tok) = TokenEnv::child("signing_comes_back_after_the_token_server_restarts") {
        let socket = tok.dir.join("p11.sock");
        let server = start_server(&tok, &socket);
        let module = tools::p11_kit_client_module().display().to_string();
        let uri =
            Pkcs11Uri::parse(&tok.uri_with(&module, "ca", ""), UriOrigin::CommandLine).unwrap();
        let settings = Settings {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..Settings::default()
        };
        let signer = TokenSigner::open(&uri, settings).unwrap();
        signer.sign_blocking(b"before").unwrap();
        assert!(signer.ready());

        stop_server(server);
        let err = signer.sign_blocking(b"while down").unwrap_err();
        assert!(matches!(err, SignerError::Unavailable { .. }), "{err}");
        // The error names the cause: the PKCS#11 function and code that failed, or (when the
        // supervisor's first keepalive, late on a loaded machine, saw the outage first and
        // already tried to re-initialise) why the re-initialisation failed.
        let text = err.to_string();
        assert!(
            text.contains("failed: CKR_") || text.contains("no token matches"),
            "{err}"
        );
        assert!(!signer.ready(), "ready() true with the token server dead");
        match signer.status() {
            // The reason is the latest failure (the sign's code, or a failed re-init).
            SignerStatus::Down { reason, retrying } => {
                assert!(retrying);
                assert!(!reason.is_empty());
            }
            SignerStatus::Up => panic!("status Up while down"),
        }
        // Fails fast while down.
        let t = Instant::now();
        assert!(signer.sign_blocking(b"fast").is_err());
        assert!(t.elapsed() < Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(600));
        assert!(!signer.ready(), "ready() while the server is still down");

        let server = start_server(&tok, &socket);
        let took = wait_for(Duration::from_secs(10), || signer.ready());
        eprintln!("recovered {took:?} after the server restarted");
        signer.sign_blocking(b"after").unwrap();
        assert!(signer.recoveries() >= 1);
        stop_server(server);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "recovery");
    tok.keygen("ca", "ecdsa-p256");
    let address = format!("unix:path={}", dir.path().join("p11.sock").display());
    tok.run_child(
        module_path!(),
        "signing_comes_back_after_the_token_server_restarts",
        &[("P11_KIT_SERVER_ADDRESS", &address)],
    );
}

/// The keepalive notices a dead token without any signing; a PIN refused during recovery is
/// tried exactly once and the signer stays down, saying why.
#[test]
fn keepalive_detects_outage_and_a_refused_pin_is_not_retried() {
    const TEST: &str = "keepalive_detects_outage_and_a_refused_pin_is_not_retried";
    if let Some(tok) = TokenEnv::child(TEST) {
        let socket = tok.dir.join("p11.sock");
        let server = start_server(&tok, &socket);
        let module = tools::p11_kit_client_module().display().to_string();
        let uri =
            Pkcs11Uri::parse(&tok.uri_with(&module, "ca", ""), UriOrigin::CommandLine).unwrap();
        let settings = Settings {
            keepalive_interval: Duration::from_millis(200),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..Settings::default()
        };
        let signer = TokenSigner::open(&uri, settings).unwrap();
        signer.sign_blocking(b"before").unwrap();
        stop_server(server);
        wait_for(Duration::from_secs(5), || !signer.ready());

        // Change the user PIN behind the signer's back (directly on SoftHSM).
        let out = Command::new("pkcs11-tool")
            .args(["--module", &tok.module, "--login", "--pin", &tok.pin()])
            .args(["--change-pin", "--new-pin", "a-different-pin"])
            .env("SOFTHSM2_CONF", &tok.conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let before = login_calls();
        let server = start_server(&tok, &socket);
        wait_for(Duration::from_secs(10), || {
            matches!(
                signer.status(),
                SignerStatus::Down {
                    retrying: false,
                    ..
                }
            )
        });
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(login_calls(), before + 1, "the refused PIN was retried");
        assert!(!signer.ready());
        let SignerStatus::Down { reason, .. } = signer.status() else {
            panic!("up with a wrong PIN");
        };
        assert!(
            reason.contains("C_Login failed: CKR_PIN_INCORRECT"),
            "{reason}"
        );
        let err = signer.sign_blocking(b"x").unwrap_err();
        assert!(err.to_string().contains("CKR_PIN_INCORRECT"), "{err}");
        stop_server(server);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "pinchange");
    tok.keygen("ca", "ecdsa-p256");
    let address = format!("unix:path={}", dir.path().join("p11.sock").display());
    tok.run_child(
        module_path!(),
        TEST,
        &[("P11_KIT_SERVER_ADDRESS", &address)],
    );
}

/// A hung token (server stopped with SIGSTOP, calls block with no timeout of their own): a
/// caller that cannot get a session within the acquire timeout marks the signer down, later
/// callers fail fast, and signing comes back once the token answers again.
#[test]
fn hung_token_marks_down_and_recovers_after_it_resumes() {
    const TEST: &str = "hung_token_marks_down_and_recovers_after_it_resumes";
    if let Some(tok) = TokenEnv::child(TEST) {
        let socket = tok.dir.join("p11.sock");
        let server = start_server(&tok, &socket);
        let module = tools::p11_kit_client_module().display().to_string();
        let text = tok.uri_with(&module, "ca", "&max-sessions=1");
        let uri = Pkcs11Uri::parse(&text, UriOrigin::CommandLine).unwrap();
        let settings = Settings {
            acquire_timeout: Duration::from_millis(300),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..Settings::default()
        };
        let signer = TokenSigner::open(&uri, settings).unwrap();
        signer.sign_blocking(b"before").unwrap();
        signal(&server, "-STOP");
        let stuck = {
            let s = std::sync::Arc::clone(&signer);
            std::thread::spawn(move || s.sign_blocking(b"stuck"))
        };
        std::thread::sleep(Duration::from_millis(200));
        let err = signer.sign_blocking(b"waits").unwrap_err();
        assert!(matches!(err, SignerError::Unavailable { .. }), "{err}");
        assert!(!signer.ready());
        let t = Instant::now();
        assert!(signer.sign_blocking(b"fast").is_err());
        assert!(t.elapsed() < Duration::from_millis(100), "not fail-fast");
        signal(&server, "-CONT");
        let _ = stuck.join().unwrap();
        wait_for(Duration::from_secs(10), || signer.ready());
        signer.sign_blocking(b"after").unwrap();
        stop_server(server);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok = TokenEnv::create(dir.path(), "hung");
    tok.keygen("ca", "ecdsa-p256");
    let address = format!("unix:path={}", dir.path().join("p11.sock").display());
    tok.run_child(
        module_path!(),
        TEST,
        &[("P11_KIT_SERVER_ADDRESS", &address)],
    );
}

/// Sends a signal to the server's process group.
fn signal(server: &Child, sig: &str) {
    let group = format!("-{}", server.id());
    let status = Command::new("kill")
        .args([sig, "--", &group])
        .status()
        .unwrap();
    assert!(status.success());
}

//! The one set of tool wrappers every test harness mounts: the kubesigner binary ([`bin`]), a
//! free local port ([`free_port`]), the real `kubectl` ([`kubectl`], [`kubectl_ok`], how it gets
//! its kubeconfig made explicit by [`Via`]), stopping a child process ([`terminate`],
//! [`stop`], [`kill`]), [`wait_for`] / [`wait_for_some`] instead of fixed sleeps, checking a raw
//! signature with openssl ([`openssl_verify_signature`]), [`openssl`] that must succeed, a CLI
//! usage error ([`assert_one_line_64`]), the `hsm/` scripts ([`hsm_script`]) and p11-kit's
//! client module ([`p11_kit_client_module`]), and a test's name for re-running this binary on
//! it ([`libtest_name`]).
//!
//! External tools the tests run are required: a missing tool fails the test (CI installs every
//! tool with scripts/setup-host); only the explicit opt-out
//! `KUBESIGNER_TESTS_ALLOW_MISSING_TOOLS=1`, which CI never sets, turns that into a printed skip
//! for a developer's partial machine ([`require`]).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The opt-out variable (never set in CI).
pub const ALLOW_MISSING: &str = "KUBESIGNER_TESTS_ALLOW_MISSING_TOOLS";

/// `true` when `tool ARGS` runs; panics when it does not, unless [`ALLOW_MISSING`] is `1`
/// (then `false`, with the reason printed).
pub fn require(tool: &str, args: &[&str], package: &str) -> bool {
    match Command::new(tool).args(args).output() {
        Ok(_) => true,
        Err(e) if std::env::var(ALLOW_MISSING).as_deref() == Ok("1") => {
            eprintln!("skipped by {ALLOW_MISSING}=1: {tool} is not installed ({e})");
            false
        }
        Err(e) => panic!(
            "{tool} is not installed ({e}); scripts/setup-host installs it (Debian package \
             {package}); set {ALLOW_MISSING}=1 to skip on a machine without it"
        ),
    }
}

/// The kubesigner binary cargo built for this test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kubesigner")
}

/// A local TCP port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How [`kubectl`] is given its kubeconfig; the cache always lives next to the kubeconfig, so
/// parallel tests never share one.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    /// `KUBECONFIG=<file>` and `HOME=<its folder>`: kubectl's own defaults (cache in
    /// `<folder>/.kube/cache`), as an operator's shell has them.
    Env,
    /// `--kubeconfig <file>` and `KUBECACHEDIR=<its folder>/<cache>`.
    Flag { cache: &'static str },
}

/// Runs the real `openssl` with `args` in `dir`; it must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A script of the repository's `hsm/` folder (`softhsm-token`, `tpm-token`, `find-module`).
pub fn hsm_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm").join(name)
}

/// A usage error as the CLI gives it: exit code 64 and one line on stderr that contains `needle`.
pub fn assert_one_line_64(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

/// p11-kit's client module (the "remote HSM" side of a `p11-kit server`), where Debian,
/// Fedora and others install it.
pub fn p11_kit_client_module() -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu/pkcs11",
        "/usr/lib/aarch64-linux-gnu/pkcs11",
        "/usr/lib64/pkcs11",
        "/usr/lib/pkcs11",
    ]
    .iter()
    .map(|d| Path::new(d).join("p11-kit-client.so"))
    .find(|p| p.is_file())
    .expect("p11-kit-client.so not found (install p11-kit-modules)")
}

/// The name libtest gives test `name` of the test file whose `module_path!()` is `module`:
/// `signer::sign` and `x` give `sign::x` (each file under `tests/<area>/` is a module of its
/// area's binary, whose own name is not part of a test's name). For re-running this test binary
/// on that one test with `--exact`.
pub fn libtest_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, file)) => format!("{file}::{name}"),
        None => name.to_owned(),
    }
}

/// Runs the real kubectl with `kubeconfig` handed over as `via` says; stdin is empty.
pub fn kubectl(via: Via, kubeconfig: &Path, args: &[&str]) -> Output {
    let folder = kubeconfig.parent().unwrap();
    let mut cmd = Command::new("kubectl");
    match via {
        Via::Env => {
            cmd.env("KUBECONFIG", kubeconfig).env("HOME", folder);
        }
        Via::Flag { cache } => {
            cmd.arg("--kubeconfig")
                .arg(kubeconfig)
                .env("KUBECACHEDIR", folder.join(cache));
        }
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl must be installed")
}

/// [`kubectl`] that must succeed; returns its stdout.
pub fn kubectl_ok(via: Via, kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(via, kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// SIGTERM, then waits up to `grace` for the exit: `Ok(status)`; a child still running then is
/// SIGKILLed and reaped: `Err(its status, if it could be read)`.
pub fn terminate(mut child: Child, grace: Duration) -> Result<ExitStatus, Option<ExitStatus>> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    Err(child.wait().ok())
}

/// Takes the child out of `slot` (nothing if it is empty) and stops it as [`terminate`] does;
/// its exit status, however it ended.
pub fn stop(slot: &mut Option<Child>, grace: Duration) -> Option<ExitStatus> {
    let child = slot.take()?;
    terminate(child, grace).map_or_else(|killed| killed, Some)
}

/// SIGKILLs and reaps the child in `slot`, if any (for `Drop`: no waiting, errors ignored).
pub fn kill(slot: &mut Option<Child>) {
    if let Some(mut child) = slot.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Verifies `sig` over `msg` with `openssl` and the PEM public key (independent of aws-lc-rs).
pub fn openssl_verify_signature(
    dir: &Path,
    pem: &str,
    digest: &str,
    msg: &[u8],
    sig: &[u8],
) -> bool {
    let (p, m, s) = (
        dir.join("pub.pem"),
        dir.join("msg.bin"),
        dir.join("sig.bin"),
    );
    std::fs::write(&p, pem).unwrap();
    std::fs::write(&m, msg).unwrap();
    std::fs::write(&s, sig).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", digest, "-verify"])
        .arg(&p)
        .arg("-signature")
        .arg(&s)
        .arg(&m)
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

/// How often [`poll`], [`wait_for`] and [`wait_for_some`] look again.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls `f` every [`POLL_EVERY`] until it returns `Some` (that value) or `timeout` has passed
/// (`None`). Also the bounded wait of a negative check: "nothing happens within 2 s" is
/// `poll(2 s, happened).is_none()`, which still fails as soon as it happens.
pub fn poll_some<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// [`poll_some`] for a plain condition: `true` once `ready` holds, `false` after `timeout`.
pub fn poll(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    poll_some(timeout, || ready().then_some(())).is_some()
}

/// Waits until `ready` holds; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, ready: impl FnMut() -> bool) {
    assert!(
        poll(timeout, ready),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Waits until `f` returns `Some`, and returns that; panics naming `what` after `timeout`.
pub fn wait_for_some<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll_some(timeout, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

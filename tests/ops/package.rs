//! The Debian package as an operator meets it, on this (disposable, root) machine: build it
//! with `scripts/package --profile dev --no-build` (the binary this test build made, stripped by cargo-deb; the
//! release package differs only in the binary's optimisation), `dpkg -i`, the installed binary,
//! man pages, users, directories and units, a `dev` run from `/usr/bin`, an upgrade that keeps
//! the store and an edited conffile, `dpkg -r` and `--purge`. About 10 s after the binary is built.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Processes whose executable is the installed binary (also once dpkg deleted it).
fn installed_processes() -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(e.path().join("exe")) {
            let exe = exe.to_string_lossy().into_owned();
            if exe == "/usr/bin/kubesigner" || exe == "/usr/bin/kubesigner (deleted)" {
                pids.push(pid);
            }
        }
    }
    pids
}

fn build_package() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The binary packed is the one this test build made.
    assert_eq!(
        Path::new(env!("CARGO_BIN_EXE_kubesigner")),
        repo.join("target/debug/kubesigner")
    );
    run(Command::new(repo.join("scripts/package"))
        .args(["--profile", "dev", "--no-build"])
        .current_dir(&repo));
    let deb = repo.join(format!(
        "target/debian/kubesigner_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(deb.is_file(), "{} missing", deb.display());
    deb
}

fn dpkg(args: &[&str], deb: Option<&Path>) -> Output {
    let mut c = Command::new("dpkg");
    c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    if let Some(d) = deb {
        c.arg(d);
    }
    run(&mut c)
}

/// `kubesigner dev` from the installed binary answers `/readyz`, then stops on SIGTERM.
fn dev_runs_from_the_installed_binary() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("/usr/bin/kubesigner")
        .args(["dev", "--dir"])
        .arg(dir.path().join("state"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "dev exited");
        let ca = dir.path().join("state/ca.crt");
        let ok = ca.exists()
            && Command::new("curl")
                .args(["-sS", "--fail", "--cacert"])
                .arg(&ca)
                .arg(format!("https://127.0.0.1:{port}/readyz"))
                .output()
                .unwrap()
                .status
                .success();
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "dev not ready in 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert!(status.success(), "dev exited with {status} on SIGTERM");
}

#[test]
fn package_installs_upgrades_removes_and_purges_as_debian_expects() {
    assert_eq!(
        rustix::process::geteuid().as_raw(),
        0,
        "the install test runs as root"
    );
    let deb = build_package();

    // Install: user, directories and conffile made; nothing started.
    dpkg(&["-i"], Some(&deb));
    let version = stdout(&run(Command::new("/usr/bin/kubesigner").arg("--version")));
    assert!(
        version.starts_with(&format!(
            "kubesigner {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
    let info = stdout(&run(Command::new("dpkg-deb").args(["-I"]).arg(&deb)));
    assert!(info.contains("Recommends: softhsm2"), "{info}");
    assert!(
        !info.contains("Depends: softhsm2") && info.contains("Depends: libc6"),
        "{info}"
    );
    for page in ["kubesigner", "kubesigner-serve", "kubesigner-token-create"] {
        let path = stdout(&run(Command::new("man").args(["-w", page])));
        assert!(
            path.trim().ends_with(&format!("/man1/{page}.1.gz")),
            "{path}"
        );
    }
    for f in [
        "/usr/share/bash-completion/completions/kubesigner",
        "/usr/share/zsh/vendor-completions/_kubesigner",
        "/usr/share/fish/vendor_completions.d/kubesigner.fish",
        "/usr/share/doc/kubesigner/SECURITY.md",
        "/usr/share/doc/kubesigner/copyright",
        "/usr/share/kubesigner/deploy/prometheus/kubesigner.rules.yml",
    ] {
        assert!(Path::new(f).is_file(), "{f} not installed");
    }
    run(Command::new("systemd-analyze").args([
        "verify",
        "/usr/lib/systemd/system/kubesigner.service",
        "/usr/lib/systemd/system/kubesigner-controller.service",
    ]));
    let uid = stdout(&run(Command::new("id").args(["-u", "kubesigner"])));
    let uid: u32 = uid.trim().parse().unwrap();
    let etc = std::fs::metadata("/etc/kubesigner").unwrap();
    assert_eq!((etc.mode() & 0o777, etc.uid()), (0o750, 0));
    let state = std::fs::metadata("/var/lib/kubesigner").unwrap();
    assert_eq!((state.mode() & 0o777, state.uid()), (0o700, uid));
    let conf = std::fs::metadata("/etc/kubesigner/kubesigner.toml").unwrap();
    assert_eq!(conf.mode() & 0o777, 0o640);
    assert_eq!(
        installed_processes(),
        Vec::<u32>::new(),
        "install started something"
    );
    let conffiles = stdout(&run(Command::new("dpkg-query").args([
        "-W",
        "-f=${Conffiles}",
        "kubesigner",
    ])));
    assert!(
        conffiles.contains("/etc/kubesigner/kubesigner.toml"),
        "{conffiles}"
    );

    dev_runs_from_the_installed_binary();

    // Upgrade (the same version again runs the same maintainer scripts): the store and an
    // edited conffile stay as they were.
    let edited = "# edited by the operator\n";
    let mut text = std::fs::read_to_string("/etc/kubesigner/kubesigner.toml").unwrap();
    text.push_str(edited);
    std::fs::write("/etc/kubesigner/kubesigner.toml", &text).unwrap();
    std::fs::write("/var/lib/kubesigner/kubesigner.db", b"store").unwrap();
    std::fs::write("/etc/kubesigner/ca.crt", b"operator's CA").unwrap();
    dpkg(&["-i", "--force-confold"], Some(&deb));
    assert_eq!(
        std::fs::read_to_string("/etc/kubesigner/kubesigner.toml").unwrap(),
        text
    );
    assert_eq!(
        std::fs::read("/var/lib/kubesigner/kubesigner.db").unwrap(),
        b"store"
    );

    // Remove: binary gone, nothing of it running, conffile and state kept.
    dpkg(&["-r", "kubesigner"], None);
    assert!(!Path::new("/usr/bin/kubesigner").exists());
    assert_eq!(
        installed_processes(),
        Vec::<u32>::new(),
        "left running after dpkg -r"
    );
    assert!(Path::new("/etc/kubesigner/kubesigner.toml").exists());

    // Purge: the package's conffile goes; the operator's CA file and the store stay.
    let purged = stdout(&dpkg(&["--purge", "kubesigner"], None));
    assert!(!Path::new("/etc/kubesigner/kubesigner.toml").exists());
    assert!(Path::new("/etc/kubesigner/ca.crt").exists());
    assert!(Path::new("/var/lib/kubesigner/kubesigner.db").exists());
    assert!(purged.contains("kept /var/lib/kubesigner"), "{purged}");
    // Leave the machine as found (the user stays, as Debian leaves system users).
    std::fs::remove_dir_all("/etc/kubesigner").unwrap();
    std::fs::remove_dir_all("/var/lib/kubesigner").unwrap();
}

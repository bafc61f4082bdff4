//! Build script: names the commit in `kubesigner --version` (`KUBESIGNER_GIT_REV`).
//!
//! The commit is the `KUBESIGNER_GIT_REV` environment variable when set (a packager building
//! from a tarball passes it in), else `git rev-parse HEAD` when the source is a git checkout and
//! git is installed, else `unknown`: a missing git never fails the build. It names the commit
//! the build started from; uncommitted edits are not flagged (telling them apart would mean
//! rebuilding on every index change).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=KUBESIGNER_GIT_REV");
    // Rebuild when HEAD moves (a commit, a checkout), not on every index change.
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--git-path", &r])
    {
        println!("cargo:rerun-if-changed={p}");
    }
    let rev = std::env::var("KUBESIGNER_GIT_REV")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KUBESIGNER_GIT_REV={rev}");
}

//! External tools the tests run. A missing tool fails the test (CI installs every tool with
//! scripts/setup-host); only the explicit opt-out `KUBESIGNER_TESTS_ALLOW_MISSING_TOOLS=1`,
//! which CI never sets, turns that into a printed skip for a developer's partial machine.

#![allow(dead_code)]

use std::process::Command;

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

//! Test support for the signer tests: throw-away SoftHSM tokens (one directory per test) and
//! running a test body in a child process whose environment carries `SOFTHSM2_CONF` (the
//! module reads it when it loads; tests never call `set_var`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variable naming the test a child process runs.
const CHILD_TEST: &str = "KUBESIGNER_TEST_CHILD";
/// Environment variable carrying the token directory to the child.
const CHILD_DIR: &str = "KUBESIGNER_TEST_TOKEN_DIR";

/// A SoftHSM token in its own directory.
#[derive(Debug, Clone)]
pub struct TokenEnv {
    pub dir: PathBuf,
    pub conf: String,
    pub module: String,
    pub label: String,
    pub pin_file: PathBuf,
}

pub use super::tools;

pub use tools::bin;

impl TokenEnv {
    /// Makes a fresh token labelled `label` in `dir` with `hsm/softhsm-token`.
    pub fn create(dir: &Path, label: &str) -> TokenEnv {
        let out = Command::new(tools::hsm_script("softhsm-token"))
            .arg(dir)
            .arg(label)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm-token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap()
                .to_owned()
        };
        TokenEnv {
            dir: dir.to_owned(),
            conf: get("SOFTHSM2_CONF"),
            module: get("KUBESIGNER_PKCS11_MODULE"),
            label: get("KUBESIGNER_TOKEN_LABEL"),
            pin_file: PathBuf::from(get("KUBESIGNER_PIN_FILE")),
        }
    }

    /// The key URI for object `key` (module, PIN file).
    pub fn uri(&self, key: &str) -> String {
        self.uri_with(&self.module, key, "")
    }

    /// A key URI with another module path and extra query attributes (`&k=v`).
    pub fn uri_with(&self, module: &str, key: &str, extra_query: &str) -> String {
        format!(
            "pkcs11:token={};object={}?module-path={}&pin-source=file:{}{}",
            self.label,
            key,
            module,
            self.pin_file.display(),
            extra_query
        )
    }

    /// The user PIN.
    pub fn pin(&self) -> String {
        std::fs::read_to_string(&self.pin_file).unwrap()
    }

    /// `kubesigner hsm keygen` for object `key` with `algorithm`, SOFTHSM2_CONF in the env.
    pub fn keygen(&self, key: &str, algorithm: &str) -> Output {
        let out = self.kubesigner(&[
            "hsm",
            "keygen",
            "--uri",
            &self.uri(key),
            "--algorithm",
            algorithm,
        ]);
        assert!(
            out.status.success(),
            "keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs the kubesigner binary with this token's environment.
    pub fn kubesigner(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap()
    }

    /// In a child process: the token the parent made, or `None` in the parent.
    pub fn child(test: &str) -> Option<TokenEnv> {
        if std::env::var(CHILD_TEST).ok()? != test {
            return None;
        }
        let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
        Some(TokenEnv {
            conf: std::env::var("SOFTHSM2_CONF").unwrap(),
            module: std::env::var("KUBESIGNER_PKCS11_MODULE").unwrap(),
            label: std::env::var("KUBESIGNER_TOKEN_LABEL").unwrap(),
            pin_file: dir.join("pin"),
            dir,
        })
    }

    /// Re-runs this test binary for `test` (of the test file whose `module_path!()` is
    /// `module`) alone, with the token's environment plus `extra`, and asserts that the child
    /// passed.
    pub fn run_child(&self, module: &str, test: &str, extra: &[(&str, &str)]) {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                &tools::libtest_name(module, test),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_TEST, test)
            .env(CHILD_DIR, &self.dir)
            .env("SOFTHSM2_CONF", &self.conf)
            .env("KUBESIGNER_PKCS11_MODULE", &self.module)
            .env("KUBESIGNER_TOKEN_LABEL", &self.label)
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stderr}");
        assert!(
            out.status.success(),
            "child failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
        assert!(stdout.contains("1 passed"), "child ran no test\n{stdout}");
    }
}

//! Test support for the signer matrix: a throw-away token of either implementation in its own
//! directory — SoftHSM (`hsm/softhsm-token`) or a TPM 2.0 through tpm2-pkcs11 on a software
//! TPM (`hsm/tpm-token`: swtpm + private D-Bus + tpm2-abrmd, stopped when the handle drops) —
//! and running a test body in a child process whose environment carries the module
//! environment (the module reads it when it loads; tests never call `set_var`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variable naming the test a child process runs.
const CHILD_TEST: &str = "KUBESIGNER_TEST_CHILD";
/// Environment variables carrying the token to the child.
const CHILD_DIR: &str = "KUBESIGNER_TEST_TOKEN_DIR";
const CHILD_IMPL: &str = "KUBESIGNER_TEST_TOKEN_IMPL";
const CHILD_ENV: &str = "KUBESIGNER_TEST_MODULE_ENV";

/// The token implementations the matrix runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    SoftHsm,
    Tpm,
}

impl Impl {
    fn script(self) -> &'static str {
        match self {
            Impl::SoftHsm => "softhsm-token",
            Impl::Tpm => "tpm-token",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Impl::SoftHsm => "softhsm",
            Impl::Tpm => "tpm",
        }
    }

    fn parse(s: &str) -> Impl {
        match s {
            "softhsm" => Impl::SoftHsm,
            "tpm" => Impl::Tpm,
            other => panic!("unknown token implementation {other}"),
        }
    }
}

/// A token in its own directory.
#[derive(Debug)]
pub struct Token {
    pub imp: Impl,
    pub dir: PathBuf,
    pub module: String,
    pub label: String,
    pub pin_file: PathBuf,
    /// The module environment (`K`, `V`), e.g. `SOFTHSM2_CONF` or the `TPM2_PKCS11_*` set.
    pub env: Vec<(String, String)>,
    /// Whether dropping this handle stops the TPM stack (the parent's handle; not a child's).
    owner: bool,
}

pub use super::tools;

pub use tools::bin;

/// Runs `hsm/<script> args…` and returns its `K=V` lines.
fn run_script(name: &str, args: &[&Path], label: Option<&str>) -> Vec<(String, String)> {
    let mut cmd = Command::new(tools::hsm_script(name));
    cmd.args(args);
    if let Some(l) = label {
        cmd.arg(l);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

impl Token {
    /// Makes a fresh token of `imp` labelled `label` in `dir` (for a TPM: starts its stack).
    pub fn create(imp: Impl, dir: &Path, label: &str) -> Token {
        let vars = run_script(imp.script(), &[dir], Some(label));
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{} printed no {k}", imp.script()))
        };
        let env = vars
            .iter()
            .filter(|(k, _)| !k.starts_with("KUBESIGNER_"))
            .cloned()
            .collect();
        Token {
            imp,
            dir: dir.to_owned(),
            module: get("KUBESIGNER_PKCS11_MODULE"),
            label: get("KUBESIGNER_TOKEN_LABEL"),
            pin_file: PathBuf::from(get("KUBESIGNER_PIN_FILE")),
            env,
            owner: true,
        }
    }

    /// TPM only: SIGKILL the TPM (swtpm) and its resource manager (tpm2-abrmd), as an outage;
    /// the D-Bus daemon stays (it stands in for the host's system bus).
    pub fn kill_tpm(&self) {
        assert_eq!(self.imp, Impl::Tpm);
        let d = self.dir.as_path();
        run_script("tpm-token", &[Path::new("--kill-tpm"), d], None);
    }

    /// TPM only: starts the stack again on the same state and store (same token, same keys).
    pub fn start_tpm(&self) {
        assert_eq!(self.imp, Impl::Tpm);
        run_script("tpm-token", &[self.dir.as_path()], None);
    }

    /// The key URI for object `key` (module, PIN file) plus extra query attributes (`&k=v`).
    pub fn uri_with(&self, key: &str, extra_query: &str) -> String {
        format!(
            "pkcs11:token={};object={}?module-path={}&pin-source=file:{}{}",
            self.label,
            key,
            self.module,
            self.pin_file.display(),
            extra_query
        )
    }

    pub fn uri(&self, key: &str) -> String {
        self.uri_with(key, "")
    }

    /// The user PIN.
    pub fn pin(&self) -> String {
        std::fs::read_to_string(&self.pin_file).unwrap()
    }

    /// `--module-env K=V` arguments for this token.
    pub fn module_env_args(&self) -> Vec<String> {
        self.env
            .iter()
            .flat_map(|(k, v)| ["--module-env".to_owned(), format!("{k}={v}")])
            .collect()
    }

    /// Runs the kubesigner binary with this token's environment.
    pub fn kubesigner(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    /// `kubesigner hsm keygen` for object `key` with `algorithm`; asserts success.
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
            "keygen {algorithm} on {:?}: {}",
            self.imp,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// In a child process: the token the parent made, or `None` in the parent.
    pub fn child(test: &str) -> Option<Token> {
        if std::env::var(CHILD_TEST).ok()? != test {
            return None;
        }
        let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
        let env = std::env::var(CHILD_ENV)
            .unwrap()
            .split('\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Some(Token {
            imp: Impl::parse(&std::env::var(CHILD_IMPL).unwrap()),
            module: std::env::var("KUBESIGNER_PKCS11_MODULE").unwrap(),
            label: std::env::var("KUBESIGNER_TOKEN_LABEL").unwrap(),
            pin_file: dir.join("pin"),
            dir,
            env,
            owner: false,
        })
    }

    /// Re-runs this test binary for `test` (of the test file whose `module_path!()` is
    /// `module`) alone, with the token's environment, and asserts that the child passed.
    /// Returns the child's stdout.
    pub fn run_child(&self, module: &str, test: &str) -> String {
        let env_list: String = self.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                &tools::libtest_name(module, test),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_TEST, test)
            .env(CHILD_DIR, &self.dir)
            .env(CHILD_IMPL, self.imp.name())
            .env(CHILD_ENV, env_list)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("KUBESIGNER_PKCS11_MODULE", &self.module)
            .env("KUBESIGNER_TOKEN_LABEL", &self.label)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stderr}");
        print!("{stdout}");
        assert!(
            out.status.success(),
            "child failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
        assert!(stdout.contains("1 passed"), "child ran no test\n{stdout}");
        stdout
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if self.owner && self.imp == Impl::Tpm {
            let _ = Command::new(tools::hsm_script("tpm-token"))
                .arg("--stop")
                .arg(&self.dir)
                .output();
        }
    }
}

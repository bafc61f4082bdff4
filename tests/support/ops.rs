//! Harness for the ops tests: `kubesigner dev --setup-only` in a fresh directory (its own
//! SoftHSM token, CA, kubeconfigs), extra TOML appended to the generated configuration, then
//! `kubesigner serve --config … --allow-root` with stderr kept in a file (the "system log").

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

// Re-exported for the ops tests (not every binary that mounts support uses them).
#[allow(unused_imports)]
pub use super::appliance::{bin, csr_manifest, free_port, kubectl, kubectl_ok, openssl_csr, tools};

/// A configured (and maybe running) `kubesigner serve`.
pub struct Served {
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub child: Option<Child>,
    log_no: usize,
}

impl Served {
    /// Sets up a dev directory and appends `extra` to its configuration.
    pub fn setup(extra: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        super::appliance::dev_setup(&dir.path().join("state"), &addr, &[]);
        let s = Served {
            dir,
            addr,
            child: None,
            log_no: 0,
        };
        let mut cfg = std::fs::read_to_string(s.config()).unwrap();
        cfg.push_str(extra);
        std::fs::write(s.config(), cfg).unwrap();
        s
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn config(&self) -> PathBuf {
        self.state().join("kubesigner.toml")
    }

    pub fn admin(&self) -> PathBuf {
        self.state().join("admin.kubeconfig")
    }

    /// The stderr of every serve run so far (the system log), concatenated.
    pub fn log(&self) -> String {
        (0..=self.log_no)
            .map(|i| std::fs::read_to_string(self.log_path(i)).unwrap_or_default())
            .collect()
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("serve-{i}.log"))
    }

    /// Starts serve with `config` (default: the generated one); waits for `/readyz`.
    pub fn start(&mut self) {
        self.start_with(&self.config());
    }

    pub fn start_with(&mut self, config: &Path) {
        self.start_args(config, &[]);
    }

    /// Starts serve with `config` and extra global arguments (e.g. `--log-format json`).
    pub fn start_args(&mut self, config: &Path, extra: &[&str]) {
        let mut cmd = Command::new(bin());
        cmd.args(extra);
        self.start_command(cmd, config);
    }

    /// Starts `CMD serve --allow-root --config CONFIG` (CMD: the binary with global arguments
    /// and environment, or a wrapper such as `sh -c 'umask 022; exec "$@"'`); waits for
    /// `/readyz`.
    pub fn start_command(&mut self, mut cmd: Command, config: &Path) {
        self.log_no += 1;
        let log = std::fs::File::create(self.log_path(self.log_no)).unwrap();
        let child = cmd
            .args(["serve", "--allow-root", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let ready = tools::poll(Duration::from_secs(60), || {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve exited with {st}:\n{}", self.log());
            }
            kubectl(&self.admin(), &["get", "--raw", "/readyz"])
                .status
                .success()
        });
        assert!(ready, "not ready:\n{}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        tools::stop(&mut self.child, Duration::from_secs(10));
    }

    /// Waits until the log contains `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize, within: Duration) {
        let what = format!("{count} × {needle:?} in the log");
        if !tools::poll(within, || self.log().matches(needle).count() >= count) {
            panic!("timed out waiting for {what}:\n{}", self.log());
        }
    }

    /// Runs `kubesigner ARGS` and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin()).args(args).output().unwrap()
    }

    /// `kubesigner audit export --config` (must succeed).
    pub fn export(&self) -> String {
        Self::export_with(&self.config())
    }

    /// `kubesigner audit export --config CONFIG` (must succeed).
    pub fn export_with(config: &Path) -> String {
        let out = Command::new(bin())
            .args(["audit", "export", "--config"])
            .arg(config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates a kubelet-serving CSR as the admin.
    pub fn create_csr(&self, name: &str, node: &str) {
        super::appliance::create_serving_csr(self.dir.path(), &self.admin(), name, node);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        tools::kill(&mut self.child);
    }
}

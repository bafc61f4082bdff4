//! The PKCS#11 module's environment (e.g. `SOFTHSM2_CONF`, `P11_KIT_SERVER_ADDRESS`), applied
//! before the module loads by replacing the process with itself (same PID, same argv, the
//! environment added) — never by `set_var` in a running process.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Set (to the process id, which `exec` keeps) in the re-executed process so a second exec is
/// never attempted (no exec loop); a value inherited from another process is ignored.
pub const REEXEC_MARKER: &str = "KUBESIGNER_MODULE_ENV_APPLIED";
/// Most variables accepted (a module needs one or two).
pub const MAX_ENV_VARS: usize = 32;

/// Errors applying the module environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// A `KEY=VALUE` argument without `=` or with an empty or bad key.
    #[error("bad module environment entry {entry:?}: expected KEY=VALUE")]
    BadEntry {
        /// The entry (a name or a KEY=VALUE; never a PIN).
        entry: String,
    },
    /// Too many variables.
    #[error("more than {MAX_ENV_VARS} module environment variables")]
    TooMany,
    /// The re-executed process still lacks the values (something strips them).
    #[error("module environment {key} still differs after re-executing; refusing to loop")]
    Loop {
        /// The variable name.
        key: String,
    },
    /// The exec failed.
    #[error("cannot re-execute with the module environment: {0}")]
    Exec(std::io::Error),
}

/// Parses repeated `--module-env KEY=VALUE` arguments.
pub fn parse_env_args(args: &[String]) -> Result<BTreeMap<String, String>, EnvError> {
    if args.len() > MAX_ENV_VARS {
        return Err(EnvError::TooMany);
    }
    let mut map = BTreeMap::new();
    for a in args {
        let bad = || EnvError::BadEntry { entry: a.clone() };
        let (k, v) = a.split_once('=').ok_or_else(bad)?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad());
        }
        map.insert(k.to_owned(), v.to_owned());
    }
    Ok(map)
}

/// Makes sure the process environment holds `env`. If it does, returns `Ok(())`. Otherwise
/// replaces the process with itself (same argv, `env` added) and does not return — call it
/// from `main` (or a one-shot command) before any thread starts or the module loads.
pub fn apply_module_environment(env: &BTreeMap<String, String>) -> Result<(), EnvError> {
    if env.len() > MAX_ENV_VARS {
        return Err(EnvError::TooMany);
    }
    let missing = env
        .iter()
        .find(|(k, v)| std::env::var_os(k).as_deref() != Some(OsStr::new(v.as_str())));
    let Some((key, _)) = missing else {
        return Ok(());
    };
    let pid = std::process::id().to_string();
    if std::env::var_os(REEXEC_MARKER).as_deref() == Some(OsStr::new(&pid)) {
        return Err(EnvError::Loop { key: key.clone() });
    }
    let exe = std::env::current_exe().map_err(EnvError::Exec)?;
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let err = Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .envs(env)
        .env(REEXEC_MARKER, &pid)
        .exec();
    Err(EnvError::Exec(err))
}

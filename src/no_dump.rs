//! Keeps secrets held in memory (the token PIN, the serving key, bootstrap-token material) out
//! of core dumps and away from same-user `ptrace`: the process sets its core-file limit to 0
//! and marks itself non-dumpable (`PR_SET_DUMPABLE` 0) before it reads any secret. The systemd
//! units also say `LimitCORE=0`; this covers runs outside them.

use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};

/// Why the process could not be made non-dumpable.
#[derive(Debug, thiserror::Error)]
pub enum NoDumpError {
    /// `setrlimit(RLIMIT_CORE, 0)` failed.
    #[error("cannot set the core-file limit to 0: {0}")]
    CoreLimit(rustix::io::Errno),
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error("cannot mark the process non-dumpable: {0}")]
    Dumpable(rustix::io::Errno),
}

/// Sets `RLIMIT_CORE` to 0 (soft and hard) and `PR_SET_DUMPABLE` to 0.
pub fn forbid_core_dumps() -> Result<(), NoDumpError> {
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )
    .map_err(NoDumpError::CoreLimit)?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable).map_err(NoDumpError::Dumpable)
}

#[cfg(test)]
mod tests;

//! Process exit codes (sysexits.h), so a service manager can tell a bad configuration
//! (never worth a restart: a real HSM locks the PIN after a few wrong tries) from a crash.

/// Command line usage error or bad configuration (EX_USAGE).
pub const USAGE: i32 = 64;
/// A required input file could not be read (EX_NOINPUT).
pub const NO_INPUT: i32 = 66;
/// A service the appliance needs (the token, the store) is unavailable (EX_UNAVAILABLE).
pub const UNAVAILABLE: i32 = 69;
/// Internal software error (EX_SOFTWARE).
pub const SOFTWARE: i32 = 70;

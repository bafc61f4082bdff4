//! kubesigner command line entry point: parse, init tracing, run.

use clap::Parser;
use kubesigner::cli::{Cli, LogFormat};

/// Many small, short-lived allocations per request across threads: mimalloc's per-thread
/// free lists do them for about a third of glibc malloc's cost (README, Benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUBESIGNER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format() {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    // Before any secret is read: no core dumps, no same-user ptrace (SECURITY.md M-HARD-5b).
    if let Err(e) = kubesigner::no_dump::forbid_core_dumps() {
        tracing::warn!(error = %e, "core dumps could not be disabled");
    }
    std::process::exit(cli.command.run());
}

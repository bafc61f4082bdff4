//! `kubesigner generate-docs --out DIR` (hidden): man pages, one per subcommand, and shell
//! completions (bash, zsh, fish), generated from the same clap definitions that parse the
//! command line, so `--help`, the man pages and the completions cannot drift apart.
//!
//! A subcommand of the binary rather than a build script: the clap definitions live in
//! `src/cli.rs` + `src/cmd/`, which need the whole crate; a build script would compile all of
//! it a second time for the host. The package build (`scripts/package`) runs it on the binary
//! it packages.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// The binary's name in pages and completions.
const BIN: &str = "kubesigner";

/// `kubesigner generate-docs` arguments.
#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    /// The directory to write `man/*.1` and `completions/*` into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Why the pages could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct DocsError {
    /// The file or directory.
    path: PathBuf,
    /// Why.
    source: std::io::Error,
}

impl DocsArgs {
    /// Writes the pages and completions; returns the exit code.
    pub fn run(self) -> i32 {
        match generate(&self.out) {
            Ok(n) => {
                tracing::info!(out = %self.out.display(), pages = n, "man pages and completions written");
                0
            }
            Err(e) => {
                tracing::error!(error = %e, "generate-docs failed");
                crate::cmd::bootstrap::EXIT_CANT_CREATE
            }
        }
    }
}

/// Writes `DIR/man/kubesigner*.1` and `DIR/completions/{kubesigner.bash,_kubesigner,
/// kubesigner.fish}`; returns the number of man pages.
pub fn generate(out: &Path) -> Result<usize, DocsError> {
    let mut root = Cli::command();
    // Gives every subcommand its display name (`kubesigner-hsm-keygen`), the page's title.
    root.build();
    let man = out.join("man");
    mkdir(&man)?;
    let pages = man_pages(&root, &man)?;
    let completions = out.join("completions");
    mkdir(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = root.clone();
        clap_complete::generate_to(shell, &mut cmd, BIN, &completions).map_err(|source| {
            DocsError {
                path: completions.clone(),
                source,
            }
        })?;
    }
    Ok(pages)
}

/// One page for `cmd` and one for each visible subcommand below it (not clap's `help`).
fn man_pages(cmd: &clap::Command, dir: &Path) -> Result<usize, DocsError> {
    let mut n = 0;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        n += man_pages(sub, dir)?;
    }
    let page = clap_mangen::Man::new(cmd.clone())
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("kubesigner manual");
    page.generate_to(dir).map_err(|source| DocsError {
        path: dir.join(page.get_filename()),
        source,
    })?;
    Ok(n + 1)
}

fn mkdir(dir: &Path) -> Result<(), DocsError> {
    std::fs::create_dir_all(dir).map_err(|source| DocsError {
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;

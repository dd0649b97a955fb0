//! `vaultctl completions` and `vaultctl man`: the shell completion scripts and man pages,
//! generated from the same clap definition that parses the command line, so they cannot drift
//! from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// Shared with vaultd's `man` command.
#[path = "../../tools/man_pages.rs"]
mod man_pages;

use crate::cli::{Cli, CompletionShell};
use crate::error::Error;

/// Writes the completion script for `shell`.
pub fn completions(shell: CompletionShell, out: &mut dyn Write) -> Result<(), Error> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "vaultctl", out);
    Ok(())
}

/// Writes `vaultctl.1` and a page per subcommand (`vaultctl-kv-put.1`, …) into `dir`;
/// returns the files written.
pub fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let failed = |e: std::io::Error| {
        Error::failed(
            format!("writing man pages to {}", dir.display()),
            e.to_string(),
            "check that the directory is writable",
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut written = Vec::new();
    man_pages::write_pages(Cli::command(), "vaultctl", "vaultctl", dir, &mut written)
        .map_err(failed)?;
    Ok(written)
}

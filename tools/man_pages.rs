// Man pages from a clap definition, one per command and subcommand. Shared by `vaultctl man`
// and `vaultd man` (each includes this file with `#[path]`).

use std::path::{Path, PathBuf};

/// One page for `command` (the file named `name`, as `vaultctl-kv-put`; the synopsis
/// `invocation`, as `vaultctl kv put`), then its subcommands'.
pub(crate) fn write_pages(
    command: clap::Command,
    name: &str,
    invocation: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let command = command
        .name(name.to_owned())
        .bin_name(invocation.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(&path, page)?;
    written.push(path);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        let sub_name = format!("{name}-{}", sub.get_name());
        let sub_invocation = format!("{invocation} {}", sub.get_name());
        write_pages(sub.clone(), &sub_name, &sub_invocation, dir, written)?;
    }
    Ok(())
}

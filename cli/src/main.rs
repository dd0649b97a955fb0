//! `vaultctl` binary: parse, run, turn the result into an exit code (see `vaultctl --help`).
#![forbid(unsafe_code)]

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;
use vaultctl::cli::Cli;
use vaultctl::error::Error;

fn main() -> ExitCode {
    // The child of `vaultctl exec` runs as the same user: without this it could read the
    // credentials removed from its environment out of /proc/<ppid>/environ or memory.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_dumpable(false);
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(vaultctl::exec::signals::PROBE_ARG))
    {
        return vaultctl::exec::signals::probe_main();
    }
    // clap prints usage errors itself and exits with 2.
    let cli = Cli::parse();
    match vaultctl::run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // The reader went away (`vaultctl kv list | head -1`): nothing left worth saying.
        Err(Error::Output(error)) if error.kind() == ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(error @ Error::Usage(_)) => {
            eprintln!("vaultctl: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("vaultctl: {error}");
            ExitCode::FAILURE
        }
    }
}

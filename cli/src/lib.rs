//! `vaultctl`: the admin side of vaultd's command line.
//!
//! - [`cli`] declares the flags and subcommands (clap); [`config`] resolves the address,
//!   token and CA file from flags and the environment.
//! - [`client`] is the HTTP client: `X-Vault-Token`, JSON, Vault error bodies mapped onto
//!   [`client::ClientError`], whose messages say what to do.
//! - [`cmd`] holds one module per command group (`status`, `operator`, `kv`, `token`);
//!   [`output`] prints tables or JSON; [`input`] and [`kv_path`] parse what users type.
//! - [`secret::Secret`] wraps every token, unseal key, passphrase and secret value: redacted
//!   in `Debug`, zeroized on drop. Secrets are read from stdin or files, never required in
//!   argv, and never appear in error messages.
//!
//! [`run`] executes a parsed command line; `main` only maps its result onto an exit code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod docs;
pub mod error;
pub mod exec;
pub mod input;
pub mod kv_path;
pub mod mask;
pub mod output;
pub mod secret;

use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;

use crate::cli::{Cli, Command};
use crate::client::{Client, ClientConfig};
use crate::cmd::{Ctx, Outcome};
use crate::error::{Doing, Error};
use crate::output::{Format, FormatArg};

/// Runs a parsed command line against the process's stdin, stdout, stderr and environment.
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    let Cli {
        mut global,
        command,
    } = cli;
    // Offline commands: no server, no token.
    match &command {
        Command::Completions { shell } => {
            return docs::completions(*shell, &mut io::stdout().lock()).map(|()| Outcome::Done);
        }
        Command::Man { dir } => {
            let mut out = io::stdout().lock();
            for page in docs::man_pages(dir)? {
                writeln!(out, "{}", page.display())?;
            }
            return Ok(Outcome::Done);
        }
        _ => {}
    }
    let env = config::process_env;
    let addr = config::resolve_addr(global.addr.take(), env)?;
    let token = config::resolve_token(global.token.take(), env);
    let ca_cert = config::resolve_ca_cert(global.ca_cert.take(), env);
    let client = Client::new(ClientConfig {
        addr,
        token,
        ca_cert,
    })
    .doing("setting up the HTTP client")?;

    let stdin = io::stdin();
    let stdin_is_terminal = stdin.is_terminal();
    let mut stdin = stdin.lock();
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let format = match (global.format, &command) {
        (Some(FormatArg::Json), _) => Format::Json,
        (Some(FormatArg::Table) | None, _) | (Some(_), Command::Env(_)) => Format::Table,
        (Some(other), _) => {
            return Err(Error::failed(
                "reading --format",
                format!("{other:?} is only for vaultctl env").to_lowercase(),
                "use --format table or --format json",
            ));
        }
    };
    let mut ctx = Ctx {
        client,
        format,
        out: &mut stdout,
        err: &mut stderr,
        stdin: &mut stdin,
        stdin_is_terminal,
        stdin_ready: || mask::pump::readable_now(io::stdin().as_fd()),
    };
    let outcome = match command {
        Command::Status => cmd::status::run(&mut ctx),
        Command::Operator(command) => cmd::operator::run(&mut ctx, command),
        Command::Kv(command) => cmd::kv::run(&mut ctx, command),
        Command::Token(command) => cmd::token::run(&mut ctx, command),
        Command::Exec(args) => exec::exec(&mut ctx, *args),
        Command::Env(args) => exec::env(&mut ctx, args, global.format),
        Command::Mask(args) => exec::mask(&mut ctx, args),
        Command::Policy(command) => cmd::policy::run(&mut ctx, command),
        Command::DevToken {
            claims,
            audience,
            ttl,
        } => cmd::policy::dev_token(&mut ctx, claims, audience, ttl),
        // Answered before the client was set up.
        Command::Completions { .. } | Command::Man { .. } => Ok(Outcome::Done),
    }?;
    ctx.out.flush()?;
    Ok(outcome)
}

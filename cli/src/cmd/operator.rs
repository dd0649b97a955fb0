//! `vaultctl operator init | unseal | seal | rotate`: `PUT /v1/sys/{init,unseal,seal,rotate}`.
//!
//! Unseal keys and passphrases come from stdin or a file, never from arguments.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::cli::OperatorCommand;
use crate::client::{Auth, ClientError};
use crate::cmd::{Ctx, Outcome, data_of};
use crate::error::{Doing, Error};
use crate::input::{Trim, read_line_secret, read_secret_file};
use crate::output::cell;
use crate::secret::{Exposed, Secret};

/// Runs one `operator` subcommand.
pub fn run(ctx: &mut Ctx<'_>, command: OperatorCommand) -> Result<Outcome, Error> {
    match command {
        OperatorCommand::Init { passphrase_stdin } => init(ctx, passphrase_stdin),
        OperatorCommand::Unseal {
            key_file,
            passphrase_stdin,
        } => unseal(ctx, key_file.as_deref(), passphrase_stdin),
        OperatorCommand::Seal => seal(ctx),
        OperatorCommand::Rotate => rotate(ctx),
    }?;
    Ok(Outcome::Done)
}

#[derive(Serialize)]
struct InitRequest<'a> {
    secret_shares: u8,
    secret_threshold: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    passphrase: Option<Exposed<'a>>,
}

fn init(ctx: &mut Ctx<'_>, passphrase_stdin: bool) -> Result<(), Error> {
    let action = "initializing vaultd";
    let passphrase = if passphrase_stdin {
        ctx.prompt("Passphrase (input is echoed): ")?;
        Some(read_line_secret(ctx.stdin, Trim::LineEnd, "passphrase")?)
    } else {
        None
    };
    let request = InitRequest {
        secret_shares: 1,
        secret_threshold: 1,
        passphrase: passphrase.as_ref().map(Exposed),
    };
    let reply = ctx
        .client
        .put("sys/init", Auth::None, &request)
        .doing(action)?;
    let body = ctx.body(reply, action)?;
    let result = data_of(&body);
    ctx.show(result, |table| {
        let hex = result.get("keys").and_then(Value::as_array);
        let b64 = result.get("keys_base64").and_then(Value::as_array);
        let count = hex.map_or(0, Vec::len);
        let name = |base: &str, index: usize| {
            if count > 1 {
                format!("{base}_{}", index + 1)
            } else {
                base.to_owned()
            }
        };
        for (index, key) in hex.into_iter().flatten().enumerate() {
            table.row(name("unseal_key", index), cell(key));
        }
        for (index, key) in b64.into_iter().flatten().enumerate() {
            table.row(name("unseal_key_base64", index), cell(key));
        }
        if let Some(root) = result.get("root_token") {
            table.row("root_token", cell(root));
        }
        if let Some(map) = result.as_object() {
            for (key, value) in map {
                if !matches!(key.as_str(), "keys" | "keys_base64" | "root_token") {
                    table.value(key, value);
                }
            }
        }
    })?;
    writeln!(
        ctx.err,
        "vaultctl: store the unseal key and the root token somewhere safe now: they are shown \
         only this once and cannot be recovered."
    )?;
    if passphrase.is_some() {
        writeln!(
            ctx.err,
            "vaultctl: vaultd can also be unsealed with the passphrase: vaultctl operator unseal --passphrase-stdin"
        )?;
    }
    Ok(())
}

#[derive(Serialize)]
enum UnsealRequest<'a> {
    #[serde(rename = "key")]
    Key(Exposed<'a>),
    #[serde(rename = "passphrase")]
    Passphrase(Exposed<'a>),
}

fn unseal(ctx: &mut Ctx<'_>, key_file: Option<&Path>, passphrase_stdin: bool) -> Result<(), Error> {
    let action = "unsealing vaultd";
    let (secret, is_passphrase) = match key_file {
        Some(path) => (read_key_file(path)?, false),
        None if passphrase_stdin => {
            ctx.prompt("Passphrase (input is echoed): ")?;
            (
                read_line_secret(ctx.stdin, Trim::LineEnd, "passphrase")?,
                true,
            )
        }
        None => {
            ctx.prompt("Unseal key (input is echoed; prefer --key-file or a pipe): ")?;
            (
                read_line_secret(ctx.stdin, Trim::Whitespace, "unseal key")?,
                false,
            )
        }
    };
    let request = if is_passphrase {
        UnsealRequest::Passphrase(Exposed(&secret))
    } else {
        UnsealRequest::Key(Exposed(&secret))
    };
    let reply = match ctx.client.put("sys/unseal", Auth::None, &request) {
        Err(ClientError::BadRequest { message }) => {
            let what = if is_passphrase {
                "passphrase"
            } else {
                "unseal key"
            };
            return Err(Error::failed(
                action,
                format!("vaultd refused the {what}: {message}"),
                "use the unseal key printed by vaultctl operator init, or the passphrase set then",
            ));
        }
        other => other.doing(action)?,
    };
    let body = ctx.body(reply, action)?;
    let status = data_of(&body);
    ctx.show(status, |table| {
        table.object(status, &["sealed", "progress", "t", "n", "version"]);
    })
}

/// The key file's content without surrounding whitespace (editors add a newline).
fn read_key_file(path: &Path) -> Result<Secret, Error> {
    let action = "reading the unseal key file";
    let raw = read_secret_file(path, action)?;
    let key = raw.expose().trim();
    if key.is_empty() {
        return Err(Error::failed(
            action,
            format!("{} is empty", path.display()),
            "put the unseal key printed by vaultctl operator init in it",
        ));
    }
    Ok(Secret::new(key.to_owned()))
}

fn seal(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    ctx.client
        .put_empty("sys/seal", Auth::Required)
        .doing("sealing vaultd")?;
    ctx.done("vaultd is sealed; unseal it with vaultctl operator unseal")
}

fn rotate(ctx: &mut Ctx<'_>) -> Result<(), Error> {
    let reply = ctx
        .client
        .put_empty("sys/rotate", Auth::Required)
        .doing("rotating the data key")?;
    match reply {
        Some(body) => {
            let result = data_of(&body);
            ctx.show(result, |table| {
                table.object(result, &["term"]);
            })
        }
        None => ctx.done("the data key was rotated"),
    }
}

//! One module per command group. Each command builds its request, calls the client once or
//! twice, and prints through [`crate::output`].

pub mod kv;
pub mod operator;
pub mod policy;
pub mod status;
pub mod token;

use std::io::{BufRead, Write};

use serde_json::Value;

use crate::client::{Client, ClientError};
use crate::error::Error;
use crate::output::{Format, Table, write_json};

/// What a command works with.
pub struct Ctx<'a> {
    /// The vaultd client.
    pub client: Client,
    /// `--format`.
    pub format: Format,
    /// Where results go.
    pub out: &'a mut dyn Write,
    /// Where warnings and prompts go.
    pub err: &'a mut dyn Write,
    /// Where secrets are read from.
    pub stdin: &'a mut dyn BufRead,
    /// Whether stdin is a terminal (then vaultctl prompts).
    pub stdin_is_terminal: bool,
    /// Whether a read of `stdin` would return at once (only an optimisation: `false` is safe).
    pub stdin_ready: fn() -> bool,
}

impl Ctx<'_> {
    /// Prints `json` in JSON format, or the table built by `table` otherwise.
    pub fn show(&mut self, json: &Value, table: impl FnOnce(&mut Table)) -> Result<(), Error> {
        match self.format {
            Format::Json => write_json(self.out, json)?,
            Format::Table => {
                let mut rows = Table::new();
                table(&mut rows);
                rows.write(self.out)?;
            }
        }
        Ok(())
    }

    /// Prints a confirmation line in table format; JSON format prints nothing, as there is
    /// no response data.
    pub fn done(&mut self, message: &str) -> Result<(), Error> {
        if self.format == Format::Table {
            writeln!(self.out, "{message}")?;
        }
        Ok(())
    }

    /// The body of a response that must have one.
    pub fn body(&self, reply: Option<Value>, action: &str) -> Result<Value, Error> {
        reply.ok_or_else(|| Error::Request {
            action: action.to_owned(),
            source: ClientError::BadResponse {
                addr: self.client.addr().to_owned(),
                reason: "the response has no body".to_owned(),
            },
        })
    }

    /// Prompts on stderr, only when a person is typing.
    pub fn prompt(&mut self, text: &str) -> Result<(), Error> {
        if self.stdin_is_terminal {
            write!(self.err, "{text}")?;
            self.err.flush()?;
        }
        Ok(())
    }
}

/// The `data` of a Vault envelope; `sys/*` answers that are not enveloped pass through.
pub fn data_of(body: &Value) -> &Value {
    match body.get("data") {
        Some(data) if data.is_object() => data,
        _ => body,
    }
}

/// How a command ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Done,
    /// `vaultctl status` saw a sealed vaultd: exit 2.
    Sealed,
    /// `vaultctl exec`: the child's exit code.
    Exit(u8),
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Sealed => 2,
            Outcome::Exit(code) => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exit_codes() {
        assert_eq!(Outcome::Done.exit_code(), 0);
        assert_eq!(Outcome::Sealed.exit_code(), 2);
    }

    #[test]
    fn envelope_data_or_bare_body() {
        let enveloped = json!({"request_id": "r", "data": {"term": 2}});
        assert_eq!(data_of(&enveloped), &json!({"term": 2}));
        let bare = json!({"sealed": true, "t": 1});
        assert_eq!(data_of(&bare), &bare);
    }
}

//! The one error type of the command layer.
//!
//! Printed by `main` as a single line, `vaultctl: <what failed>: <why> — <what to do>`.
//! No variant ever carries a token or a secret value.

use std::io;

use crate::client::ClientError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to vaultd failed; the client error explains why and what to do.
    #[error("{action}: {source}")]
    Request {
        /// What the command was doing, e.g. `reading secret/foo`.
        action: String,
        /// The failure.
        #[source]
        source: ClientError,
    },
    /// A failure found by vaultctl itself (bad input, unreadable file, odd response).
    #[error("{action}: {why} — {fix}")]
    Failed {
        /// What the command was doing.
        action: String,
        /// What went wrong.
        why: String,
        /// What the user can do about it.
        fix: String,
    },
    /// Arguments that parse but do not go together (exit status 2, like clap's own).
    #[error("{0} — see --help")]
    Usage(String),
    /// Writing the result to stdout failed.
    #[error("writing output: {0} — check where stdout goes")]
    Output(#[from] io::Error),
}

impl Error {
    /// A failure with its explanation and remedy.
    pub fn failed(
        action: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::Failed {
            action: action.into(),
            why: why.into(),
            fix: fix.into(),
        }
    }
}

/// Attaches "what failed" to a client result.
pub trait Doing<T> {
    /// Names the action that failed.
    fn doing(self, action: impl Into<String>) -> Result<T, Error>;
}

impl<T> Doing<T> for Result<T, ClientError> {
    fn doing(self, action: impl Into<String>) -> Result<T, Error> {
        self.map_err(|source| Error::Request {
            action: action.into(),
            source,
        })
    }
}

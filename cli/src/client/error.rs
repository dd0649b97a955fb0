//! [`ClientError`]: every way a request can fail, and the mapping of HTTP statuses and Vault
//! error bodies (`{"errors":[…]}`) onto it.

use serde_json::Value;

/// Longest server error message echoed to the terminal.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a request failed. Each message reads "why — what to do".
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `--ca-cert` file could not be used.
    #[error("cannot use CA file {path}: {reason} — pass a PEM file holding the CA certificate")]
    CaCert {
        /// The file given.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("cannot connect to {addr} ({reason}) — is vaultd running at {addr}? set VAULTCTL_ADDR")]
    Connect {
        /// The configured address.
        addr: String,
        /// The transport's reason.
        reason: String,
    },
    /// A timeout expired.
    #[error("no answer from {addr} in time — check that vaultd at {addr} is up and reachable")]
    Timeout {
        /// The configured address.
        addr: String,
    },
    /// The TLS handshake failed.
    #[error(
        "TLS with {addr} failed ({reason}) — pass --ca-cert with the CA that signed vaultd's certificate, or check the scheme in VAULTCTL_ADDR"
    )]
    Tls {
        /// The configured address.
        addr: String,
        /// The TLS library's reason.
        reason: String,
    },
    /// Any other transport failure.
    #[error("the request to {addr} failed ({reason}) — check VAULTCTL_ADDR")]
    Transport {
        /// The configured address.
        addr: String,
        /// The transport's reason.
        reason: String,
    },
    /// The endpoint needs a token and none is configured.
    #[error("no token — set VAULTCTL_TOKEN (or VAULT_TOKEN)")]
    MissingToken,
    /// 403 with `invalid token`.
    #[error(
        "the token is unknown, expired or revoked — log in again / set VAULTCTL_TOKEN to a valid token"
    )]
    InvalidToken,
    /// 403 without `invalid token`: a policy denial.
    #[error(
        "permission denied — the token's policies do not allow this; see them with vaultctl token lookup"
    )]
    PermissionDenied,
    /// 503 `Vault is sealed`.
    #[error("vaultd is sealed — run vaultctl operator unseal")]
    Sealed,
    /// The server has not been initialised yet.
    #[error("vaultd is not initialized — run vaultctl operator init")]
    NotInitialized,
    /// 404. KV v2 sends a full envelope for deleted versions, kept here for the caller.
    #[error("nothing found at that path — check the path")]
    NotFound {
        /// The parsed body, if it was JSON.
        body: Option<Value>,
    },
    /// 400: the server refused the request as malformed or failed.
    #[error("vaultd rejected the request: {message} — fix the arguments and retry")]
    BadRequest {
        /// The server's messages, joined on one line.
        message: String,
    },
    /// 413.
    #[error("the request is larger than vaultd accepts — send a smaller value")]
    TooLarge,
    /// 429.
    #[error("vaultd is rate limiting this client — wait a moment and retry")]
    RateLimited,
    /// A 3xx: vaultd does not redirect, so the address points somewhere else.
    #[error(
        "{addr} answered with a redirect (HTTP {status}) — set VAULTCTL_ADDR to vaultd's own address"
    )]
    Redirect {
        /// The configured address.
        addr: String,
        /// The status code.
        status: u16,
    },
    /// Any other error status.
    #[error("vaultd answered HTTP {status}: {message} — see vaultd's log for details")]
    Status {
        /// The status code.
        status: u16,
        /// The server's messages, joined on one line.
        message: String,
    },
    /// A 2xx whose body is not the JSON expected.
    #[error("unexpected answer from {addr}: {reason} — check that VAULTCTL_ADDR points at vaultd")]
    BadResponse {
        /// The configured address.
        addr: String,
        /// What was unexpected.
        reason: String,
    },
}

/// Maps an error status and its body onto a [`ClientError`].
pub fn error_for_status(status: u16, body: Option<Value>) -> ClientError {
    let message = error_messages(body.as_ref());
    let lower = message.to_ascii_lowercase();
    match status {
        400 if lower.contains("not initialized") => ClientError::NotInitialized,
        400 => ClientError::BadRequest {
            message: if message.is_empty() {
                "no reason given".to_owned()
            } else {
                message
            },
        },
        403 if lower.contains("invalid token") => ClientError::InvalidToken,
        403 => ClientError::PermissionDenied,
        404 => ClientError::NotFound { body },
        413 => ClientError::TooLarge,
        429 => ClientError::RateLimited,
        501 => ClientError::NotInitialized,
        503 if message.is_empty() || lower.contains("sealed") => ClientError::Sealed,
        _ => ClientError::Status {
            status,
            message: if message.is_empty() {
                "no reason given".to_owned()
            } else {
                message
            },
        },
    }
}

/// The `errors` array of a Vault error body, flattened onto one printable line.
fn error_messages(body: Option<&Value>) -> String {
    let Some(errors) = body.and_then(|b| b.get("errors")).and_then(Value::as_array) else {
        return String::new();
    };
    let joined = errors
        .iter()
        .filter_map(Value::as_str)
        .map(one_line)
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.chars().count() > MAX_MESSAGE_CHARS {
        let cut: String = joined.chars().take(MAX_MESSAGE_CHARS).collect();
        format!("{cut}…")
    } else {
        joined
    }
}

/// Collapses whitespace and drops control characters, so a server message stays one safe line.
/// Vault's multierror text (`1 error occurred:\n\t* permission denied\n\n`) becomes its items.
pub fn one_line(message: &str) -> String {
    let items: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.ends_with("error occurred:"))
        .filter(|line| !line.ends_with("errors occurred:"))
        .map(|line| line.strip_prefix("* ").unwrap_or(line))
        .collect();
    items
        .join("; ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_mapping() {
        let forbidden = json!({"errors": ["permission denied", "invalid token"]});
        assert!(matches!(
            error_for_status(403, Some(forbidden)),
            ClientError::InvalidToken
        ));
        let denied = json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]});
        assert!(matches!(
            error_for_status(403, Some(denied)),
            ClientError::PermissionDenied
        ));
        let sealed = json!({"errors": ["Vault is sealed"]});
        assert!(matches!(
            error_for_status(503, Some(sealed)),
            ClientError::Sealed
        ));
        assert!(matches!(
            error_for_status(404, Some(json!({"errors": []}))),
            ClientError::NotFound { body: Some(_) }
        ));
        assert!(matches!(
            error_for_status(429, None),
            ClientError::RateLimited
        ));
        match error_for_status(400, Some(json!({"errors": ["no data provided"]}))) {
            ClientError::BadRequest { message } => assert_eq!(message, "no data provided"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn messages_become_one_line() {
        assert_eq!(
            one_line("1 error occurred:\n\t* permission denied\n\n"),
            "permission denied"
        );
        assert_eq!(one_line("a\u{1b}[31mb\tc"), "a [31mb c");
        assert_eq!(
            error_messages(Some(&json!({"errors": ["x\ny", "z"]}))),
            "x; y; z"
        );
    }
}

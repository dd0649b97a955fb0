//! A small blocking client for vaultd's Vault-compatible HTTP API.
//!
//! One agent per process: base address, `X-Vault-Token`, JSON in and out, fixed timeouts,
//! an optional CA file that replaces the built-in roots, no redirects. Every non-2xx answer
//! becomes a [`ClientError`] that already says what to do; the token appears in none of them.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use ureq::Agent;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use zeroize::Zeroizing;

use crate::secret::Secret;

mod error;

pub use error::{ClientError, error_for_status, one_line};

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for a whole request, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response body read into memory.
const MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;

/// Where and how to reach vaultd.
#[derive(Debug)]
pub struct ClientConfig {
    /// Base address, e.g. `https://vault.example.com:8200` (no trailing slash).
    pub addr: String,
    /// Token sent as `X-Vault-Token`, if any.
    pub token: Option<Secret>,
    /// PEM file with the CA certificate(s) to trust instead of the built-in roots.
    pub ca_cert: Option<PathBuf>,
}

/// Whether a request needs a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Unauthenticated endpoint (`sys/seal-status`, `sys/init`, `sys/unseal`).
    None,
    /// Fails with [`ClientError::MissingToken`] before any network traffic when no token is set.
    Required,
}

/// The HTTP client.
pub struct Client {
    agent: Agent,
    addr: String,
    token: Option<Secret>,
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Client {
    /// Builds the agent; reads the CA file if one is given.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let mut tls = TlsConfig::builder();
        if let Some(path) = &config.ca_cert {
            tls = tls.root_certs(load_ca_certs(path)?);
        }
        let agent_config = Agent::config_builder()
            .http_status_as_error(false)
            // vaultd never redirects; following one would send the token to another place.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("vaultctl/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();
        Ok(Client {
            agent: agent_config.new_agent(),
            addr: config.addr,
            token: config.token,
        })
    }

    /// The same connection settings with another token (after a login).
    pub fn with_token(&self, token: Secret) -> Client {
        Client {
            agent: self.agent.clone(),
            addr: self.addr.clone(),
            token: Some(token),
        }
    }

    /// A copy with the same token.
    pub fn with_token_kept(&self) -> Client {
        Client {
            agent: self.agent.clone(),
            addr: self.addr.clone(),
            token: self
                .token
                .as_ref()
                .map(|t| Secret::new(t.expose().to_owned())),
        }
    }

    /// The configured token, if any.
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The base address requests go to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `GET /v1/<path>`; `path` may carry a query string.
    pub fn get(&self, path: &str, auth: Auth) -> Result<Option<Value>, ClientError> {
        self.request(Method::Get, path, auth, None)
    }

    /// `PUT /v1/<path>` with a JSON body.
    pub fn put(
        &self,
        path: &str,
        auth: Auth,
        body: &impl Serialize,
    ) -> Result<Option<Value>, ClientError> {
        let bytes = encode(body)?;
        self.request(Method::Put, path, auth, Some(&bytes))
    }

    /// `PUT /v1/<path>` with no body.
    pub fn put_empty(&self, path: &str, auth: Auth) -> Result<Option<Value>, ClientError> {
        self.request(Method::Put, path, auth, None)
    }

    /// `POST /v1/<path>` with a JSON body.
    pub fn post(
        &self,
        path: &str,
        auth: Auth,
        body: &impl Serialize,
    ) -> Result<Option<Value>, ClientError> {
        let bytes = encode(body)?;
        self.request(Method::Post, path, auth, Some(&bytes))
    }

    /// `POST /v1/<path>` with no body.
    pub fn post_empty(&self, path: &str, auth: Auth) -> Result<Option<Value>, ClientError> {
        self.request(Method::Post, path, auth, None)
    }

    /// `DELETE /v1/<path>`.
    pub fn delete(&self, path: &str, auth: Auth) -> Result<Option<Value>, ClientError> {
        self.request(Method::Delete, path, auth, None)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        body: Option<&[u8]>,
    ) -> Result<Option<Value>, ClientError> {
        if auth == Auth::Required && self.token.is_none() {
            return Err(ClientError::MissingToken);
        }
        let url = format!("{}/v1/{}", self.addr, path);
        let result = match method {
            Method::Get => self.headers(self.agent.get(&url)).call(),
            Method::Delete => self.headers(self.agent.delete(&url)).call(),
            Method::Put => send(self.headers(self.agent.put(&url)), body),
            Method::Post => send(self.headers(self.agent.post(&url)), body),
        };
        let mut response = result.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let raw = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map(Zeroizing::new)
            .map_err(|e| self.transport_error(e))?;
        let parsed: Option<Value> = if raw.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice(&raw).ok()
        };
        if (200..300).contains(&status) {
            if parsed.is_none() && !raw.iter().all(u8::is_ascii_whitespace) {
                return Err(ClientError::BadResponse {
                    addr: self.addr.clone(),
                    reason: "the body is not JSON".to_owned(),
                });
            }
            return Ok(parsed);
        }
        if (300..400).contains(&status) {
            return Err(ClientError::Redirect {
                addr: self.addr.clone(),
                status,
            });
        }
        Err(error_for_status(status, parsed))
    }

    fn headers<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let request = request
            .header("Accept", "application/json")
            .header("X-Vault-Request", "true");
        match &self.token {
            Some(token) => request.header("X-Vault-Token", token.expose()),
            None => request,
        }
    }

    fn transport_error(&self, error: ureq::Error) -> ClientError {
        let addr = self.addr.clone();
        match error {
            ureq::Error::Timeout(_) => ClientError::Timeout { addr },
            ureq::Error::HostNotFound => ClientError::Connect {
                addr,
                reason: "host not found".to_owned(),
            },
            ureq::Error::ConnectionFailed => ClientError::Connect {
                addr,
                reason: "connection failed".to_owned(),
            },
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused => ClientError::Connect {
                    addr,
                    reason: "connection refused".to_owned(),
                },
                ErrorKind::TimedOut | ErrorKind::WouldBlock => ClientError::Timeout { addr },
                _ if looks_like_tls(&io.to_string()) => ClientError::Tls {
                    addr,
                    reason: one_line(&io.to_string()),
                },
                _ => ClientError::Transport {
                    addr,
                    reason: one_line(&io.to_string()),
                },
            },
            ureq::Error::Tls(reason) => ClientError::Tls {
                addr,
                reason: reason.to_owned(),
            },
            ureq::Error::Rustls(e) => ClientError::Tls {
                addr,
                reason: one_line(&e.to_string()),
            },
            other => ClientError::Transport {
                addr,
                reason: one_line(&other.to_string()),
            },
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

fn send(
    request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    body: Option<&[u8]>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match body {
        Some(bytes) => request.content_type("application/json").send(bytes),
        None => request.send_empty(),
    }
}

/// Serializes a request body into memory that is wiped afterwards (bodies may hold secrets).
fn encode(body: &impl Serialize) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    serde_json::to_vec(body)
        .map(Zeroizing::new)
        .map_err(|e| ClientError::BadResponse {
            addr: String::new(),
            reason: format!("cannot encode the request: {e}"),
        })
}

fn looks_like_tls(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    // rustls reports through io::Error; its texts name certificates, alerts or bad records.
    [
        "certificate",
        "tls",
        "handshake",
        "alert",
        "corrupt message",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

fn load_ca_certs(path: &Path) -> Result<RootCerts, ClientError> {
    let fail = |reason: String| ClientError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(fail(format!("invalid PEM ({e})"))),
        }
    }
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE block in it".to_owned()));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_recognised() {
        assert!(looks_like_tls("invalid peer certificate: UnknownIssuer"));
        assert!(looks_like_tls(
            "received corrupt message of type InvalidContentType"
        ));
        assert!(!looks_like_tls("Connection reset by peer (os error 104)"));
    }

    #[test]
    fn missing_token_fails_before_any_request() {
        let client = Client::new(ClientConfig {
            // Nothing listens here; the error must come before a connection is attempted.
            addr: "http://127.0.0.1:9".to_owned(),
            token: None,
            ca_cert: None,
        })
        .expect("client builds");
        assert!(matches!(
            client.get("auth/token/lookup-self", Auth::Required),
            Err(ClientError::MissingToken)
        ));
    }
}

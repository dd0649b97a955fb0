//! Getting a vaultd token for `exec` and `env`: `VAULTCTL_TOKEN` if set, otherwise the CI's
//! OIDC ID token exchanged at `auth/jwt/login`:
//!
//! 1. GitHub Actions: `ACTIONS_ID_TOKEN_REQUEST_URL` + `ACTIONS_ID_TOKEN_REQUEST_TOKEN`
//!    (`&audience=` added), JWT in `.value`; transient failures retried.
//! 2. GitLab CI: the variable named by `--jwt-env`, else `VAULTCTL_ID_TOKEN`.
//! 3. Anything else: `VAULTCTL_JWT`, or the file in `VAULTCTL_JWT_FILE`.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{Auth, Client};
use crate::error::{Doing, Error};
use crate::secret::{Exposed, Secret};

/// Environment variables that carry credentials; never passed on to the child.
pub const CREDENTIAL_VARS: &[&str] = &[
    "VAULTCTL_TOKEN",
    "VAULT_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "VAULTCTL_ID_TOKEN",
    "VAULTCTL_JWT",
    "VAULTCTL_JWT_FILE",
];

/// How the token in use was obtained. A token vaultctl obtained itself is revoked when this
/// is dropped, whatever path the command leaves by (an error, a failed write, a panic), unless
/// [`Credential::revoke`] already did so.
pub struct Credential {
    /// The client, carrying the token.
    pub client: Client,
    /// Whether vaultctl logged in itself (and so must revoke the token when done).
    pub obtained: bool,
    /// The token and the JWT it was bought with, so they can be masked.
    pub sensitive: Vec<Secret>,
    /// For a login: role, accessor and TTL, shown so the job log says who it ran as.
    pub login_summary: Option<String>,
    /// Leases of dynamic credentials minted with this token. Revoking a token vaultctl
    /// obtained revokes them too (vaultd does); otherwise they are revoked one by one.
    pub leases: Vec<String>,
    /// Whether revocation was already attempted.
    revoked: bool,
}

/// Options from the command line.
#[derive(Debug, Default, Clone)]
pub struct LoginOptions {
    /// `--role` / `VAULTCTL_ROLE`.
    pub role: Option<String>,
    /// `--audience` / `VAULTCTL_AUDIENCE` (GitHub only: GitLab sets `aud` in the job).
    pub audience: Option<String>,
    /// `--jwt-env NAME`.
    pub jwt_env: Option<String>,
}

fn failed(why: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::failed("getting a credential", why, fix)
}

/// Where a JWT came from, for messages.
fn find_jwt(
    env: &impl Fn(&str) -> Option<String>,
    options: &LoginOptions,
) -> Result<Option<(Secret, &'static str)>, Error> {
    let request_url = env("ACTIONS_ID_TOKEN_REQUEST_URL");
    let request_token = env("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    match (request_url, request_token) {
        (Some(url), Some(token)) => {
            let token = Secret::new(token);
            return github_id_token(&url, &token, options.audience.as_deref())
                .map(|jwt| Some((jwt, "GitHub Actions")));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(failed(
                "only one of ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN is set",
                "give the job `permissions: id-token: write` and do not override these variables",
            ));
        }
        (None, None) => {}
    }
    if let Some(name) = &options.jwt_env {
        return match env(name) {
            Some(jwt) => Ok(Some((Secret::new(jwt), "--jwt-env"))),
            None => Err(failed(
                format!("--jwt-env names {name}, which is not set"),
                format!("declare it in the job's id_tokens: (GitLab) or export {name}"),
            )),
        };
    }
    if let Some(jwt) = env("VAULTCTL_ID_TOKEN") {
        return Ok(Some((Secret::new(jwt), "VAULTCTL_ID_TOKEN")));
    }
    if let Some(jwt) = env("VAULTCTL_JWT") {
        return Ok(Some((Secret::new(jwt), "VAULTCTL_JWT")));
    }
    if let Some(path) = env("VAULTCTL_JWT_FILE") {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            failed(
                format!("cannot read VAULTCTL_JWT_FILE ({path}): {e}"),
                "point VAULTCTL_JWT_FILE at the file holding the ID token",
            )
        })?;
        return Ok(Some((
            Secret::new(text.trim().to_owned()),
            "VAULTCTL_JWT_FILE",
        )));
    }
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        return Err(failed(
            "running in GitHub Actions but no OIDC token request variables are set",
            "add `permissions: id-token: write` to the job (or the workflow)",
        ));
    }
    if env("GITLAB_CI").as_deref() == Some("true") {
        return Err(failed(
            "running in GitLab CI but VAULTCTL_ID_TOKEN is not set",
            "add `id_tokens: { VAULTCTL_ID_TOKEN: { aud: <audience> } }` to the job, or pass --jwt-env NAME",
        ));
    }
    Ok(None)
}

/// Asks GitHub's token service for an ID token, retrying transient failures.
fn github_id_token(
    url: &str,
    request_token: &Secret,
    audience: Option<&str>,
) -> Result<Secret, Error> {
    let mut url = url.to_owned();
    if let Some(aud) = audience {
        let encoded: String = aud
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        url.push_str(if url.contains('?') { "&" } else { "?" });
        url.push_str("audience=");
        url.push_str(&encoded);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..4u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1)));
        }
        let result = agent
            .get(&url)
            .header(
                "Authorization",
                &format!("bearer {}", request_token.expose()),
            )
            .header("Accept", "application/json")
            .call();
        let mut response = match result {
            Ok(r) => r,
            Err(e) => {
                last = format!("request failed: {e}");
                continue;
            }
        };
        let status = response.status().as_u16();
        if status >= 500 || status == 429 {
            last = format!("HTTP {status}");
            continue;
        }
        if status != 200 {
            return Err(failed(
                format!("GitHub's ID token service answered HTTP {status}"),
                "check the job's `permissions: id-token: write` and the --audience value",
            ));
        }
        let body: Value = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_json()
            .map_err(|_| failed("GitHub's ID token service sent no JSON", "retry the job"))?;
        return match body.get("value").and_then(Value::as_str) {
            Some(jwt) if !jwt.is_empty() => Ok(Secret::new(jwt.to_owned())),
            _ => Err(failed(
                "GitHub's ID token answer has no value",
                "retry the job",
            )),
        };
    }
    Err(failed(
        format!("GitHub's ID token service failed 4 times ({last})"),
        "retry the job; check GitHub's status page",
    ))
}

/// The token to use: the configured one, or a fresh one from an OIDC login.
pub fn obtain(
    client: &Client,
    env: impl Fn(&str) -> Option<String>,
    options: &LoginOptions,
) -> Result<Credential, Error> {
    if let Some(token) = client.token() {
        return Ok(Credential {
            client: client.with_token_kept(),
            obtained: false,
            sensitive: vec![Secret::new(token.expose().to_owned())],
            login_summary: None,
            leases: Vec::new(),
            revoked: false,
        });
    }
    let Some((jwt, source)) = find_jwt(&env, options)? else {
        return Err(failed(
            "no VAULTCTL_TOKEN and no CI ID token found",
            "set VAULTCTL_TOKEN, or run in GitHub Actions (id-token: write) or GitLab CI (id_tokens:), or set VAULTCTL_JWT",
        ));
    };
    let role = options.role.clone().ok_or_else(|| {
        failed(
            format!("an ID token was found ({source}) but no role was given"),
            "pass --role NAME or set VAULTCTL_ROLE",
        )
    })?;
    let reply = client
        .post(
            "auth/jwt/login",
            Auth::None,
            &json!({"role": role, "jwt": Exposed(&jwt)}),
        )
        .doing(format!(
            "logging in with role {role} (ID token from {source})"
        ))?;
    let token = reply
        .as_ref()
        .and_then(|r| r.pointer("/auth/client_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            failed(
                "the login answer has no token",
                "check that VAULTCTL_ADDR points at vaultd",
            )
        })?;
    let token = Secret::new(token.to_owned());
    let auth = reply.as_ref().and_then(|r| r.get("auth"));
    let accessor = auth
        .and_then(|a| a.get("accessor"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let ttl = auth
        .and_then(|a| a.get("lease_duration"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let policies: Vec<&str> = auth
        .and_then(|a| a.get("policies"))
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let login_summary = Some(format!(
        "logged in with role {role} (ID token from {source}): accessor {accessor}, policies {}, ttl {ttl}s",
        policies.join(",")
    ));
    let sensitive = vec![Secret::new(token.expose().to_owned()), jwt];
    Ok(Credential {
        client: client.with_token(token),
        obtained: true,
        sensitive,
        login_summary,
        leases: Vec::new(),
        revoked: false,
    })
}

impl Credential {
    /// Revokes a token vaultctl obtained itself (once), which revokes its leases; for a token
    /// it was given, revokes only the leases it minted. Failures are reported, not fatal: the
    /// token and the leases expire on their own.
    pub fn revoke(&mut self) -> Result<(), Error> {
        if self.revoked {
            return Ok(());
        }
        self.revoked = true;
        if !self.obtained {
            let failures = super::dynamic::revoke(&self.client, &self.leases);
            return match failures.is_empty() {
                true => Ok(()),
                false => Err(Error::failed(
                    "revoking the credentials minted for the command",
                    failures.join("; "),
                    "revoke them with vault lease revoke, or let them expire",
                )),
            };
        }
        self.client
            .post_empty("auth/token/revoke-self", Auth::Required)
            .doing("revoking the token vaultctl obtained")
            .map(|_| ())
    }
}

impl Drop for Credential {
    fn drop(&mut self) {
        if let Err(e) = self.revoke() {
            // stderr may be the very thing that failed: nothing more to do then.
            let _ = writeln!(std::io::stderr(), "vaultctl: warning: {e}");
        }
    }
}

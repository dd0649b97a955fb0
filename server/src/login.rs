//! The JWT login flow: a pipeline trades its CI's OIDC ID token for a short-lived token
//! carrying a role's policies. Small phases, in order:
//!
//! 1. [`rate_limit`]: per client address, before any work;
//! 2. [`find_role`]: the role (by lowercased name, as Vault does) and its issuer;
//! 3. [`verify`](crate::oidc::verify::verify): signature, issuer, audience, times → [`VerifiedClaims`];
//! 4. [`check_claims`]: the role's claim bindings, by the pure policy engine;
//! 5. [`issue`]: the token, durable before the response, together with the spent `jti`
//!    ([`spent_jti`]): each `jti` logs in once, atomically, until the JWT expires (+ leeway).
//!
//! Every refusal is a [`LoginDenied`]: a stable `code` for metrics, the full `detail` for the
//! audit log, and a message for the pipeline that says which check failed (never an expected
//! value). What the audit line needs (role, issuer, identity claims) is left in [`LoginTrace`]
//! as the phases learn it, failed logins included. No HTTP here: the handler parses, calls
//! [`login`] and replies.

use crate::clock::unix_now;
use crate::oidc::verify::{self, IssuerParams, VerifiedClaims, VerifyError};
use crate::policy_store::PolicySnapshot;
use crate::state::App;
use crate::store::{StoreError, Tree};
use crate::tokens::{Issued, NewToken};
use policies::Role;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Claims copied into token metadata and the audit log: identity, never secrets.
const SELECTED_CLAIMS: &[&str] = &[
    "sub",
    "repository",
    "repository_id",
    "repository_owner",
    "ref",
    "ref_type",
    "environment",
    "event_name",
    "workflow_ref",
    "job_workflow_ref",
    "run_id",
    "run_attempt",
    "sha",
    "actor",
    "project_path",
    "project_id",
    "namespace_path",
    "ref_protected",
    "pipeline_id",
    "pipeline_source",
    "job_id",
    "user_login",
];

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDenied {
    /// A stable, bounded label for metrics (`unknown_role`, `audience`, `replay`, …).
    pub code: &'static str,
    /// The full reason, for the audit log only.
    pub detail: String,
    /// What the pipeline is told.
    pub message: String,
    /// Refused by the rate limiter (429) rather than by a check (400).
    pub rate_limited: bool,
}

impl LoginDenied {
    fn check(code: &'static str, detail: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            message: message.into(),
            rate_limited: false,
        }
    }

    fn token(e: &VerifyError) -> Self {
        Self::check(e.code(), e.detail(), format!("error validating token: {e}"))
    }
}

/// A login that did not produce a token.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// A check refused it; the pipeline can fix something.
    #[error("login denied: {}", .0.detail)]
    Denied(LoginDenied),
    /// The store failed (or is sealed).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A loaded document names an issuer it does not define (validation prevents this).
    #[error("role {0} names a missing issuer")]
    MissingIssuer(String),
}

impl From<LoginDenied> for LoginError {
    fn from(denied: LoginDenied) -> Self {
        LoginError::Denied(denied)
    }
}

/// The `path` of a token a JWT login issued: what marks its metadata as a verified identity.
pub(crate) const LOGIN_PATH: &str = "auth/jwt/login";

/// What the audit line and metrics learn from a login, successful or not.
#[derive(Debug, Default)]
pub(crate) struct LoginTrace {
    /// The role asked for (lowercased), once the body named one.
    pub role: Option<String>,
    /// The role's issuer, once the role exists.
    pub issuer: Option<String>,
    /// Identity claims of a verified token.
    pub claims: Option<BTreeMap<String, String>>,
}

/// A successful login.
#[derive(Debug)]
pub(crate) struct LoggedIn {
    pub issued: Issued,
}

/// Runs the whole flow for `role_name` and the presented `unverified_jwt`.
pub(crate) async fn login(
    app: &App,
    client: Option<IpAddr>,
    role_name: &str,
    unverified_jwt: &str,
    trace: &mut LoginTrace,
) -> Result<LoggedIn, LoginError> {
    rate_limit(app, client)?;
    let snapshot = app.policies.current().await?;
    let (role_name, role, issuer) = find_role(&snapshot, role_name, trace)?;
    let claims = verify::verify(unverified_jwt, &issuer, &role.audiences, &app.policies.jwks)
        .await
        .map_err(|e| LoginDenied::token(&e))?;
    let selected = selected_claims(&claims);
    trace.claims = Some(selected.clone());
    check_claims(role, &claims)?;
    let template_claims = template_claims(&snapshot, role, &claims);
    let jti = spent_jti(app, &issuer, &claims)?;
    let issued = issue(app, &role_name, role, selected, template_claims, jti).await?;
    Ok(LoggedIn { issued })
}

fn rate_limit(app: &App, client: Option<IpAddr>) -> Result<(), LoginDenied> {
    match client {
        Some(ip) if !app.login_limiter.allow(ip) => Err(LoginDenied {
            rate_limited: true,
            ..LoginDenied::check("rate_limited", "login rate limit", "rate limit exceeded")
        }),
        _ => Ok(()),
    }
}

fn find_role<'a>(
    snapshot: &'a Arc<PolicySnapshot>,
    requested: &str,
    trace: &mut LoginTrace,
) -> Result<(String, &'a Role, IssuerParams), LoginError> {
    if requested.is_empty() {
        return Err(LoginDenied::check("bad_request", "missing role", "missing role").into());
    }
    let role_name = requested.to_lowercase();
    trace.role = Some(role_name.clone());
    let Some(role) = snapshot.document.roles.get(&role_name) else {
        return Err(LoginDenied::check(
            "unknown_role",
            "unknown role",
            format!(
                "role \"{}\" could not be found",
                role_name.chars().take(64).collect::<String>()
            ),
        )
        .into());
    };
    trace.issuer = Some(role.issuer.clone());
    let issuer = snapshot
        .issuer_params(&role.issuer)
        .ok_or_else(|| LoginError::MissingIssuer(role_name.clone()))?;
    Ok((role_name, role, issuer))
}

fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.chars().take(256).collect()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn selected_claims(claims: &VerifiedClaims) -> BTreeMap<String, String> {
    SELECTED_CLAIMS
        .iter()
        .filter_map(|name| {
            claims
                .get(name)
                .and_then(claim_text)
                .map(|v| ((*name).to_owned(), v))
        })
        .collect()
}

fn check_claims(role: &Role, claims: &VerifiedClaims) -> Result<(), LoginDenied> {
    policies::match_claims(role, claims.as_json()).map_err(|e| {
        LoginDenied::check(
            "claims",
            e.detail(),
            format!("error validating claims: {e}"),
        )
    })
}

/// The record of a spent `jti` (tree, key, value: the JWT's `exp`), which the token's batch
/// creates if absent — once across every request and replica (see
/// [`crate::store::sealed::SealedStore::write_durable_once`]): a replay finds it and is
/// refused. On sled it lands in the same atomic batch as the token's records; on PostgreSQL
/// before them. Either way a crash can only lose a login, never allow a replay. It is kept
/// until `exp + LEEWAY_SECS` (see [`verify::LEEWAY_SECS`]).
fn spent_jti(
    app: &App,
    issuer: &IssuerParams,
    claims: &VerifiedClaims,
) -> Result<(Tree, Vec<u8>, Vec<u8>), LoginError> {
    let key = jti_key(app, &issuer.issuer, claims.jti())?;
    Ok((Tree::Jti, key, claims.exp().to_be_bytes().to_vec()))
}

/// Where a spent `jti` is recorded: an HMAC of the issuer and the `jti`, so the store holds
/// no token identifiers in the clear.
fn jti_key(app: &App, issuer: &str, jti: &str) -> Result<Vec<u8>, StoreError> {
    let keyring = app.store.keyring().ok_or(StoreError::Sealed)?;
    Ok(keyring
        .hmac(format!("jti\0{issuer}\0{jti}").as_bytes())
        .to_vec())
}

/// `vaultctl policy test --jwt`: every check a login of `unverified_jwt` to `role_name` would
/// run, one by one — the token's (format, signature, times, `jti`, whether it was already
/// used here) and the role's (issuer, audience, claims) — without logging in: nothing is
/// spent, issued or rate-limited. The verdict agrees with [`login`]: when the real
/// verification refuses a token the checks passed, that refusal is added as a check.
pub(crate) async fn explain_token(
    app: &App,
    role_name: &str,
    unverified_jwt: &str,
) -> Result<policies::Explanation, LoginError> {
    let snapshot = app.policies.current().await?;
    let role_name = role_name.to_lowercase();
    let document = &snapshot.document;
    let Some(role) = document.roles.get(&role_name) else {
        return Ok(policies::explain(document, &role_name, &Value::Null));
    };
    let issuer = snapshot
        .issuer_params(&role.issuer)
        .ok_or_else(|| LoginError::MissingIssuer(role_name.clone()))?;
    let jwks = &app.policies.jwks;
    let inspection = verify::inspect(unverified_jwt, &role.issuer, &issuer, jwks).await;
    let claims = inspection.claims.unwrap_or(Value::Null);
    let mut checks = inspection.checks;
    if inspection.signature_verified
        && let Some(jti) = claims.get("jti").and_then(Value::as_str)
    {
        let spent = app
            .store
            .get(Tree::Jti, &jti_key(app, &issuer.issuer, jti)?)
            .await?
            .is_some();
        let wanted = "a token not yet used to log in here";
        checks.push(if spent {
            policies::Check::fail("replay", wanted, "already used (each token logs in once)")
        } else {
            policies::Check::pass("replay", wanted, "not used")
        });
    }
    let mut explanation = policies::explain(document, &role_name, &claims);
    if inspection.signature_verified
        && let Err(e) = verify::verify(unverified_jwt, &issuer, &role.audiences, jwks).await
        && explanation.can_login
        && checks.iter().all(|c| c.passed)
    {
        checks.push(policies::Check::fail(
            "verification",
            "a token vaultd's login accepts",
            e.to_string(),
        ));
    }
    explanation = explanation.with_token_checks(checks, inspection.signature_verified);
    Ok(explanation)
}

/// The verified claims the role's templated rules use, as they are (strings and integers
/// only; rendering refuses anything else anyway), for the token record. `None` when no
/// rule is templated: the record stays small.
fn template_claims(
    snapshot: &PolicySnapshot,
    role: &Role,
    claims: &VerifiedClaims,
) -> Option<serde_json::Map<String, Value>> {
    if !snapshot.is_templated(&role.policies) {
        return None;
    }
    Some(
        snapshot
            .document
            .template_claims(role.policies.iter().map(String::as_str))
            .into_iter()
            .filter_map(|name| {
                let value = claims.get(&name)?;
                matches!(value, Value::String(_) | Value::Number(_)).then(|| (name, value.clone()))
            })
            .collect(),
    )
}

async fn issue(
    app: &App,
    role_name: &str,
    role: &Role,
    selected: BTreeMap<String, String>,
    claims: Option<serde_json::Map<String, Value>>,
    jti: (Tree, Vec<u8>, Vec<u8>),
) -> Result<Issued, LoginError> {
    // Pipeline logins never yield root, whatever a document says (as Vault refuses too).
    if role.policies.iter().any(|p| p == "root") {
        return Err(LoginDenied::check(
            "root_role",
            "role grants root",
            "this role grants the root policy; pipeline logins cannot create root tokens",
        )
        .into());
    }
    let mut token_policies: Vec<String> = role.policies.clone();
    token_policies.push("default".into());
    token_policies.sort();
    token_policies.dedup();
    let mut meta = selected;
    meta.insert("role".into(), role_name.to_owned());
    meta.insert("issuer".into(), role.issuer.clone());
    let issued = app
        .tokens
        .create_once(
            NewToken {
                policies: token_policies,
                meta,
                display_name: format!("jwt-{role_name}"),
                ttl: role.ttl.as_secs().max(1),
                explicit_max_ttl: role.max_ttl.as_secs(),
                num_uses: role.num_uses.unwrap_or(0),
                path: LOGIN_PATH.into(),
                renewable: true,
                role: Some(role_name.to_owned()),
                not_after: None,
                claims,
            },
            jti,
        )
        .await?;
    issued.ok_or_else(|| LoginDenied::token(&VerifyError::Replayed).into())
}

/// Removes spent `jti` records whose JWT can no longer be accepted (`exp + LEEWAY_SECS`).
pub(crate) async fn sweep_jti(app: &App) -> Result<usize, StoreError> {
    let now = unix_now();
    let expired: Vec<Vec<u8>> = app
        .store
        .scan(Tree::Jti, b"")
        .await?
        .into_iter()
        .filter(|(_, v)| {
            let exp = v
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            exp + verify::LEEWAY_SECS < now
        })
        .map(|(k, _)| k)
        .collect();
    let n = expired.len();
    if n > 0 {
        app.store.delete(Tree::Jti, expired).await?;
    }
    Ok(n)
}

//! The native admin API for policy-as-code, under `sys/vaultctl/`:
//!
//! - `GET sys/vaultctl/policy` — the document in force (JSON), its version and names.
//! - `PUT sys/vaultctl/policy` `{"documents":[toml…],"dry_run":bool,"replace":bool}` —
//!   validate, lint and apply atomically; answers the changes and lint warnings.
//! - `DELETE sys/vaultctl/policy/<issuer|role|policy>/<name>`.
//! - `PUT sys/vaultctl/policy-test` `{"role","claims"}` or `{"role","jwt"}` — explain a login
//!   against the document in force, check by check; with a `jwt`, its signature, times and
//!   `jti` are checked too, without logging in or spending it.
//! - `PUT sys/dev/oidc/token` (dev only) — mint a dev issuer token.

use super::reply::Reply;
use super::{Ctx, Op, Req, authorize};
use crate::authz::Capability;
use crate::error::ApiError;
use crate::state::SharedApp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

const MAX_DOCUMENTS: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    documents: Vec<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    replace: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    role: String,
    /// The claims to test (`--claims`)…
    #[serde(default)]
    claims: Option<Value>,
    /// …or a captured ID token (`--jwt`), verified but never spent, logged or returned.
    #[serde(default)]
    jwt: Option<zeroize::Zeroizing<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevTokenBody {
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    ttl: Option<Value>,
}

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    let acl_path = format!("sys/{path}");
    match (path, req.op) {
        ("vaultctl/policy", Op::Read) => {
            authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            let snapshot = app.policies.current().await?;
            Ok(Reply::Data(json!({
                "version": snapshot.version,
                "updated_time": snapshot.updated_time,
                "issuers": snapshot.document.issuers.keys().collect::<Vec<_>>(),
                "roles": snapshot.document.roles.keys().collect::<Vec<_>>(),
                "policies": snapshot.document.policies.keys().collect::<Vec<_>>(),
                "document": snapshot.document,
            })))
        }
        ("vaultctl/policy", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: ApplyBody = req.json()?;
            if body.documents.is_empty() || body.documents.len() > MAX_DOCUMENTS {
                return Err(ApiError::BadRequest(format!(
                    "give between 1 and {MAX_DOCUMENTS} documents"
                )));
            }
            let mut parsed = Vec::with_capacity(body.documents.len());
            for (i, text) in body.documents.iter().enumerate() {
                parsed.push(
                    policies::parse_document(text)
                        .map_err(|e| ApiError::BadRequest(format!("document {}: {e}", i + 1)))?,
                );
            }
            let (version, changes, merged) = app
                .policies
                .apply(parsed, body.replace, body.dry_run)
                .await?;
            let warnings: Vec<Value> = policies::lint(&merged)
                .into_iter()
                .map(|w| json!({"code": w.code.as_str(), "subject": w.subject, "message": w.message}))
                .collect();
            ctx.audit_extra.insert("changes".into(), json!(changes));
            Ok(Reply::Data(json!({
                "version": version, "dry_run": body.dry_run, "changes": changes, "warnings": warnings,
            })))
        }
        (p, Op::Delete) if p.starts_with("vaultctl/policy/") => {
            authorize(app, ctx, req, &acl_path, Capability::Delete).await?;
            let rest = &p["vaultctl/policy/".len()..];
            let (kind, name) = rest.split_once('/').ok_or_else(|| {
                ApiError::BadRequest("use sys/vaultctl/policy/<issuer|role|policy>/<name>".into())
            })?;
            let (version, changes, _) = app.policies.remove(kind, name).await?;
            Ok(Reply::Data(json!({"version": version, "changes": changes})))
        }
        ("vaultctl/policy-test", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: TestBody = req.json()?;
            let explanation = match (body.claims, body.jwt) {
                (Some(claims), None) => {
                    let snapshot = app.policies.current().await?;
                    policies::explain(&snapshot.document, &body.role, &claims)
                }
                (None, Some(jwt)) => crate::login::explain_token(app, &body.role, &jwt).await?,
                _ => {
                    return Err(ApiError::BadRequest(
                        "give either \"claims\" or \"jwt\"".into(),
                    ));
                }
            };
            Ok(Reply::Data(json!(explanation)))
        }
        ("dev/oidc/token", Op::Write) => {
            let Some(issuer) = app.dev_issuer.get() else {
                return Err(ApiError::UnsupportedPath(
                    "the dev issuer runs only in `vaultd dev`".into(),
                ));
            };
            authorize(app, ctx, req, &acl_path, Capability::Sudo).await?;
            let body: DevTokenBody = req.json()?;
            let ttl = match body.ttl {
                Some(v) => crate::clock::parse_duration(&v)
                    .filter(|t| (1..=3600).contains(t))
                    .ok_or_else(|| ApiError::BadRequest("ttl must be between 1s and 1h".into()))?,
                None => 300,
            };
            let audience = body
                .audience
                .unwrap_or_else(|| crate::oidc::dev_issuer::DEFAULT_AUDIENCE.into());
            let claims = issuer.claims(&audience, ttl, body.claims);
            let jwt = issuer.sign(&claims).map_err(ApiError::Internal)?;
            Ok(Reply::Data(json!({"jwt": jwt, "claims": claims})))
        }
        _ => Err(ApiError::UnsupportedPath(format!(
            "no handler for route \"sys/{path}\""
        ))),
    }
}

//! `POST auth/jwt/login {role, jwt}`: a pipeline trades its CI's OIDC ID token for a
//! short-lived token carrying the role's policies.

use super::reply::Reply;
use super::token::auth_json;
use super::{Ctx, Op, Req};
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::oidc::verify;
use crate::state::SharedApp;
use crate::store::Tree;
use crate::tokens::NewToken;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

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

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    jwt: Option<Zeroizing<String>>,
}

fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.chars().take(256).collect()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    let result = login(app, ctx, req, path).await;
    // Roles that exist label themselves; anything a client made up counts as "unknown".
    let role = match (ctx.audit_extra.get("issuer"), ctx.audit_extra.get("role")) {
        (Some(_), Some(Value::String(role))) => role.clone(),
        _ => "unknown".to_owned(),
    };
    let outcome = if result.is_ok() { "success" } else { "denied" };
    app.metrics
        .logins
        .get_or_create(&crate::metrics::LoginLabels { role, outcome })
        .inc();
    if result.is_err() {
        let reason = ctx.denial_code.unwrap_or("bad_request");
        app.metrics
            .login_denials
            .get_or_create(&crate::metrics::ReasonLabels { reason })
            .inc();
    }
    result
}

async fn login(app: &SharedApp, ctx: &mut Ctx, req: &Req, path: &str) -> Result<Reply, ApiError> {
    if path != "login" {
        return Err(ApiError::UnsupportedPath(format!(
            "no handler for route \"auth/jwt/{path}\""
        )));
    }
    if req.op != Op::Write {
        return Err(ApiError::MethodNotAllowed);
    }
    if let Some(client) = ctx.client
        && !app.login_limiter.allow(client.ip())
    {
        ctx.audit_detail = Some("login rate limit".into());
        ctx.denial_code = Some("rate_limited");
        return Err(ApiError::RateLimited);
    }
    let body: LoginBody = req.json()?;
    let role_name = body
        .role
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::BadRequest("missing role".into()))?
        .to_lowercase();
    ctx.audit_extra
        .insert("role".into(), Value::String(role_name.clone()));
    let jwt = body.jwt.unwrap_or_default();
    let snapshot = app.policies.current()?;
    let Some(role) = snapshot.document.roles.get(&role_name) else {
        ctx.audit_detail = Some("unknown role".into());
        ctx.denial_code = Some("unknown_role");
        return Err(ApiError::BadRequest(format!(
            "role \"{}\" could not be found",
            role_name.chars().take(64).collect::<String>()
        )));
    };
    ctx.audit_extra
        .insert("issuer".into(), Value::String(role.issuer.clone()));
    let issuer = snapshot
        .issuer_params(&role.issuer)
        .ok_or_else(|| ApiError::Internal(format!("role {role_name} names missing issuer")))?;

    let claims = verify::verify(&jwt, &issuer, &role.audiences, &app.policies.jwks)
        .await
        .map_err(|e| {
            ctx.audit_detail = Some(e.detail());
            ctx.denial_code = Some(e.code());
            ApiError::BadRequest(format!("error validating token: {e}"))
        })?;
    drop(jwt);
    let selected: BTreeMap<String, String> = SELECTED_CLAIMS
        .iter()
        .filter_map(|name| {
            claims
                .get(*name)
                .and_then(claim_text)
                .map(|v| ((*name).to_owned(), v))
        })
        .collect();
    ctx.audit_extra
        .insert("claims".into(), serde_json::json!(selected));

    policies::match_claims(role, &claims).map_err(|e| {
        ctx.audit_detail = Some(e.detail());
        ctx.denial_code = Some("claims");
        ApiError::BadRequest(format!("error validating claims: {e}"))
    })?;

    // Each jti once, until its token expires. The record is written before the token so a
    // crash in between can only lose a login, never allow a replay.
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .unwrap_or_else(unix_now);
    let keyring = app.store.keyring().ok_or(ApiError::Sealed)?;
    let jti_key = keyring
        .hmac(format!("jti\0{}\0{jti}", issuer.issuer).as_bytes())
        .to_vec();
    if !app
        .store
        .insert_if_absent(Tree::Jti, &jti_key, &exp.to_be_bytes())?
    {
        let e = verify::LoginError::Replayed;
        ctx.audit_detail = Some(e.detail());
        ctx.denial_code = Some(e.code());
        return Err(ApiError::BadRequest(format!("error validating token: {e}")));
    }

    // Pipeline logins never yield root, whatever a document says (as Vault refuses too).
    if role.policies.iter().any(|p| p == "root") {
        ctx.audit_detail = Some("role grants root".into());
        ctx.denial_code = Some("root_role");
        return Err(ApiError::BadRequest(
            "this role grants the root policy; pipeline logins cannot create root tokens".into(),
        ));
    }
    let mut token_policies: Vec<String> = role.policies.clone();
    token_policies.push("default".into());
    token_policies.sort();
    token_policies.dedup();
    let mut meta = selected;
    meta.insert("role".into(), role_name.clone());
    meta.insert("issuer".into(), role.issuer.clone());
    let issued = app
        .tokens
        .create(NewToken {
            policies: token_policies,
            meta,
            display_name: format!("jwt-{role_name}"),
            ttl: role.ttl.as_secs().max(1),
            explicit_max_ttl: role.max_ttl.as_secs(),
            num_uses: role.num_uses.unwrap_or(0),
            path: "auth/jwt/login".into(),
            renewable: true,
            role: Some(role_name),
        })
        .await?;
    ctx.token_record = Some(issued.record.clone());
    Ok(Reply::Auth(auth_json(
        &issued.record,
        Some(issued.token.expose()),
    )))
}

/// Removes spent `jti` records whose JWT has expired.
pub fn sweep_jti(app: &SharedApp) -> Result<usize, crate::store::StoreError> {
    let now = unix_now();
    let expired: Vec<Vec<u8>> = app
        .store
        .scan(Tree::Jti, b"")?
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
        app.store.delete(Tree::Jti, expired)?;
    }
    Ok(n)
}

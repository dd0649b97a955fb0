//! `identity/oidc/*`: vaultd as an OIDC provider, with Vault's paths and shapes (see
//! [`crate::identity`]).
//!
//! - `GET|POST identity/oidc/config` — `issuer`;
//! - `LIST identity/oidc/key`, `GET|POST|DELETE identity/oidc/key/:name`,
//!   `POST identity/oidc/key/:name/rotate`;
//! - `LIST identity/oidc/role`, `GET|POST|DELETE identity/oidc/role/:name`;
//! - `GET identity/oidc/token/:role` — mint (needs `read` on that path);
//! - `POST identity/oidc/introspect` — `{token, client_id?}` → `{active}`;
//! - `GET identity/oidc/.well-known/openid-configuration` and `…/.well-known/keys` — public,
//!   cacheable.

use super::reply::Reply;
use super::{Ctx, Op, Req, authorize, item_name, key_list};
use crate::authz::Capability;
use crate::error::ApiError;
use crate::identity::{IdentityError, KeyParams, RoleParams};
use crate::state::SharedApp;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(message) => ApiError::BadRequest(message),
            IdentityError::Missing(_) => ApiError::NotFound,
            IdentityError::Store(s) => s.into(),
            IdentityError::Key(cause) => ApiError::Internal(cause),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    issuer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    verification_ttl: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectBody {
    token: Zeroizing<String>,
    client_id: Option<String>,
}

fn api_addr(app: &SharedApp) -> &str {
    app.api_addr
        .get()
        .map_or("http://127.0.0.1:8200", String::as_str)
}

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    let identity = &app.identity;
    let acl_path = format!("identity/oidc/{path}");
    let capability = match req.op {
        Op::Read | Op::Head => Capability::Read,
        Op::List => Capability::List,
        Op::Delete => Capability::Delete,
        Op::Write => Capability::Update,
    };
    // Public: what a cloud provider fetches to verify our tokens.
    match (path, req.op) {
        (".well-known/openid-configuration", Op::Read | Op::Head) => {
            return Ok(Reply::Public(identity.discovery(api_addr(app)).await?));
        }
        (".well-known/keys", Op::Read | Op::Head) => {
            return Ok(Reply::Public(identity.jwks().await?));
        }
        _ => {}
    }
    let segments: Vec<&str> = path.split('/').collect();
    match (segments.as_slice(), req.op) {
        (["config"], Op::Read) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            let issuer = identity.configured_issuer().await?.unwrap_or_default();
            Ok(Reply::Data(json!({ "issuer": issuer })))
        }
        (["config"], Op::Write) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            let body: ConfigBody = req.json()?;
            identity
                .set_issuer(body.issuer.as_deref().unwrap_or(""))
                .await?;
            Ok(Reply::NoContent)
        }
        (["key"], Op::List) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            key_list(identity.list_keys().await?)
        }
        (["key", name], Op::Read) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            Ok(Reply::Data(identity.read_key(item_name(name)?).await?))
        }
        (["key", name], Op::Write) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            let params: KeyParams = req.json()?;
            identity.write_key(item_name(name)?, params).await?;
            Ok(Reply::NoContent)
        }
        (["key", name], Op::Delete) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            identity.delete_key(item_name(name)?).await?;
            Ok(Reply::NoContent)
        }
        (["key", name, "rotate"], Op::Write) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            let body: RotateBody = req.json()?;
            identity
                .rotate_key(item_name(name)?, body.verification_ttl.as_ref())
                .await?;
            Ok(Reply::NoContent)
        }
        (["role"], Op::List) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            key_list(identity.list_roles().await?)
        }
        (["role", name], Op::Read) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            Ok(Reply::Data(identity.read_role(item_name(name)?).await?))
        }
        (["role", name], Op::Write) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            let params: RoleParams = req.json()?;
            identity.write_role(item_name(name)?, params).await?;
            Ok(Reply::NoContent)
        }
        (["role", name], Op::Delete) => {
            authorize(app, ctx, req, &acl_path, capability).await?;
            identity.delete_role(item_name(name)?).await?;
            Ok(Reply::NoContent)
        }
        (["token", name], Op::Read) => {
            let record = authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            let minted = identity
                .mint(item_name(name)?, &record, api_addr(app))
                .await?;
            ctx.audit_extra
                .insert("identity_role".into(), json!(name.to_owned()));
            Ok(Reply::Data(json!({
                "token": minted.token.as_str(),
                "client_id": minted.client_id,
                "ttl": minted.ttl,
            })))
        }
        (["introspect"], Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: IntrospectBody = req.json()?;
            let answer = identity
                .introspect(&body.token, body.client_id.as_deref(), api_addr(app))
                .await?;
            // Raw, not enveloped, as Vault answers it.
            Ok(Reply::Raw(
                axum::http::StatusCode::OK,
                match answer {
                    Ok(()) => json!({ "active": true }),
                    Err(error) => json!({ "active": false, "error": error }),
                },
            ))
        }
        _ => Err(ApiError::UnsupportedPath(format!(
            "no handler for route \"identity/oidc/{path}\""
        ))),
    }
}

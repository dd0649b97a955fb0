//! `database/*` (Vault's database secrets engine, PostgreSQL only) and `sys/leases/*`, with
//! Vault's paths and shapes (see [`crate::database`]).
//!
//! - `LIST database/config`, `GET|POST|DELETE database/config/:name`,
//!   `POST database/rotate-root/:name`, `POST database/reset/:name`;
//! - `LIST database/roles`, `GET|POST|DELETE database/roles/:name`;
//! - `GET database/creds/:role` — a new user under a lease (needs `read` on that path);
//! - `PUT sys/leases/lookup|renew|revoke` `{lease_id, …}` (also `renew/:id`, `revoke/:id`),
//!   `PUT sys/leases/revoke-prefix/:prefix` (sudo). The token that obtained a lease may
//!   look it up, renew and revoke it without a policy for these paths.

use super::reply::Reply;
use super::{Ctx, Op, Req, authenticate, authorize, item_name, key_list, presented};
use crate::authz::Capability;
use crate::database::DatabaseError;
use crate::error::ApiError;
use crate::state::SharedApp;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// How long `sys/leases/revoke` waits for the user to be dropped.
const REVOKE_BUDGET: Duration = Duration::from_secs(10);

impl From<DatabaseError> for ApiError {
    fn from(e: DatabaseError) -> Self {
        match e {
            DatabaseError::Invalid(message) | DatabaseError::Refused(message) => {
                ApiError::BadRequest(message)
            }
            DatabaseError::Missing(_) => ApiError::NotFound,
            DatabaseError::AuthFailed(message) => ApiError::BadRequest(format!(
                "the database refused the admin password ({message}); check database/config"
            )),
            DatabaseError::Unreachable(message) | DatabaseError::Pending(message) => {
                ApiError::Unavailable(message)
            }
            DatabaseError::Store(s) => s.into(),
        }
    }
}

/// `create` for a new item, `update` for an existing one, as Vault decides.
async fn write_capability(app: &SharedApp, kind: &str, name: &str) -> Result<Capability, ApiError> {
    Ok(if app.database.exists(kind, name).await? {
        Capability::Update
    } else {
        Capability::Create
    })
}

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    let db = &app.database;
    let acl_path = format!("database/{path}");
    let segments: Vec<&str> = path.split('/').collect();
    match (segments.as_slice(), req.op) {
        (["config"], Op::List) => {
            authorize(app, ctx, req, &acl_path, Capability::List).await?;
            key_list(db.list_connections().await?)
        }
        (["config", name], Op::Read) => {
            authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            Ok(Reply::Data(db.read_connection(item_name(name)?).await?))
        }
        (["config", name], Op::Write) => {
            let capability = write_capability(app, "config", item_name(name)?).await?;
            authorize(app, ctx, req, &acl_path, capability).await?;
            let body: Map<String, Value> = req.json()?;
            db.write_connection(name, body).await?;
            ctx.audit_extra
                .insert("database_connection".into(), json!(name.to_owned()));
            Ok(Reply::NoContent)
        }
        (["config", name], Op::Delete) => {
            authorize(app, ctx, req, &acl_path, Capability::Delete).await?;
            db.delete_connection(item_name(name)?).await?;
            Ok(Reply::NoContent)
        }
        (["rotate-root", name], Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            db.rotate_root(item_name(name)?).await?;
            tracing::info!(connection = *name, "database root password rotated");
            Ok(Reply::NoContent)
        }
        (["reset", name], Op::Write) => {
            // No connection is kept open between operations: nothing to reset.
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            if !db.exists("config", item_name(name)?).await? {
                return Err(ApiError::BadRequest(format!("unknown connection {name:?}")));
            }
            Ok(Reply::NoContent)
        }
        (["roles"], Op::List) => {
            authorize(app, ctx, req, &acl_path, Capability::List).await?;
            key_list(db.list_roles().await?)
        }
        (["roles", name], Op::Read) => {
            authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            Ok(Reply::Data(db.read_role(item_name(name)?).await?))
        }
        (["roles", name], Op::Write) => {
            let capability = write_capability(app, "role", item_name(name)?).await?;
            authorize(app, ctx, req, &acl_path, capability).await?;
            let body: Map<String, Value> = req.json()?;
            db.write_role(name, body).await?;
            Ok(Reply::NoContent)
        }
        (["roles", name], Op::Delete) => {
            authorize(app, ctx, req, &acl_path, Capability::Delete).await?;
            db.delete_role(item_name(name)?).await?;
            Ok(Reply::NoContent)
        }
        (["creds", name], Op::Read) => {
            let record = authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            let owner = app.tokens.storage_key(presented(req)?)?;
            ctx.audit_extra
                .insert("database_role".into(), json!(name.to_owned()));
            let minted = db.mint(item_name(name)?, &record, &owner).await?;
            ctx.audit_extra
                .insert("lease_id".into(), json!(minted.lease_id.clone()));
            ctx.audit_extra
                .insert("database_user".into(), json!(minted.username.clone()));
            Ok(Reply::Leased {
                lease_id: minted.lease_id.clone(),
                lease_duration: minted.lease_duration,
                data: json!({
                    "username": minted.username,
                    "password": minted.password.as_str(),
                    "url": minted.url.as_str(),
                }),
            })
        }
        _ => Err(ApiError::UnsupportedPath(format!(
            "no handler for route \"database/{path}\""
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseBody {
    #[serde(default)]
    lease_id: Option<String>,
    #[serde(default)]
    increment: Option<Value>,
    #[serde(default)]
    sync: Option<bool>,
    /// hvac repeats the prefix of `revoke-prefix/:prefix` in the body.
    #[serde(default)]
    prefix: Option<String>,
}

fn lease_id_of(id: Option<&str>) -> Result<String, ApiError> {
    let id = id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::BadRequest("lease_id is required".into()))?;
    if crate::database::leases::valid_lease_id(id) {
        Ok(id.to_owned())
    } else {
        Err(ApiError::BadRequest("invalid lease ID".into()))
    }
}

/// Allows the request if the token obtained the lease, else if a policy grants `capability`
/// on `acl_path`.
async fn authorize_lease(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    acl_path: &str,
    lease_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let record = authenticate(app, ctx, req).await?;
    let caller = app.tokens.storage_key(presented(req)?)?;
    if app.database.owns(lease_id, &caller).await?
        || app
            .authz
            .allows(&record, acl_path, Capability::Update)
            .await
    {
        Ok(caller)
    } else {
        ctx.audit_detail = Some(format!("no policy grants Update on {acl_path}"));
        Err(ApiError::PermissionDenied)
    }
}

pub async fn leases(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    let db = &app.database;
    let (action, rest) = path.split_once('/').unwrap_or((path, ""));
    let acl_path = format!("sys/leases/{action}");
    if req.op == Op::List && action == "lookup" {
        // Vault's lease listing: one level of `sys/leases/lookup/<prefix>`, sudo.
        let acl_path = format!("sys/leases/lookup/{rest}");
        let record = authorize(app, ctx, req, &acl_path, Capability::List).await?;
        if !app.authz.allows(&record, &acl_path, Capability::Sudo).await {
            ctx.audit_detail = Some(format!("no policy grants Sudo on {acl_path}"));
            return Err(ApiError::PermissionDenied);
        }
        return key_list(db.list_leases(rest).await?);
    }
    if req.op != Op::Write {
        authenticate(app, ctx, req).await?;
        return Err(ApiError::MethodNotAllowed);
    }
    match action {
        "lookup" | "renew" | "revoke" => {
            let body: LeaseBody = req.json()?;
            let id = if rest.is_empty() {
                lease_id_of(body.lease_id.as_deref())?
            } else {
                lease_id_of(Some(rest))?
            };
            ctx.audit_extra.insert("lease_id".into(), json!(id.clone()));
            let caller = authorize_lease(app, ctx, req, &acl_path, &id).await?;
            match action {
                "lookup" => Ok(Reply::Data(db.lookup(&id, &caller).await?.0)),
                "renew" => {
                    let increment = body
                        .increment
                        .as_ref()
                        .map(|v| {
                            crate::clock::parse_duration(v).ok_or_else(|| {
                                ApiError::BadRequest(
                                    "increment must be a duration like \"1h\" or seconds".into(),
                                )
                            })
                        })
                        .transpose()?;
                    let duration = db.renew(&id, increment).await?;
                    Ok(Reply::Leased {
                        lease_id: id,
                        lease_duration: duration,
                        data: Value::Null,
                    })
                }
                _ => {
                    db.revoke(&id, body.sync.unwrap_or(true), REVOKE_BUDGET)
                        .await?;
                    Ok(Reply::NoContent)
                }
            }
        }
        "revoke-prefix" => {
            let body: LeaseBody = req.json()?;
            if rest.is_empty()
                || body
                    .prefix
                    .as_deref()
                    .is_some_and(|p| p.trim_end_matches('/') != rest)
            {
                return Err(ApiError::BadRequest(
                    "a prefix is required in the path (and the body's prefix, if any, must match it)".into(),
                ));
            }
            let acl_path = format!("sys/leases/revoke-prefix/{rest}");
            let record = authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            if !app.authz.allows(&record, &acl_path, Capability::Sudo).await {
                ctx.audit_detail = Some(format!("no policy grants Sudo on {acl_path}"));
                return Err(ApiError::PermissionDenied);
            }
            let revoked = db
                .revoke_prefix(rest, body.sync.unwrap_or(true), REVOKE_BUDGET)
                .await?;
            ctx.audit_extra
                .insert("leases_revoked".into(), json!(revoked));
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::UnsupportedPath(format!(
            "no handler for route \"sys/leases/{path}\""
        ))),
    }
}

//! KV v2 at `secret/`: `data/`, `metadata/`, `delete/`, `undelete/`, `destroy/`.

use super::reply::Reply;
use super::{Ctx, Op, Req, authorize};
use crate::authz::Capability;
use crate::error::ApiError;
use crate::kv::ReadOutcome;
use crate::state::SharedApp;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const INVALID_KV_PATH: &str = "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.";

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    let (kind, secret) = path.split_once('/').unwrap_or((path, ""));
    // As Vault does: a list is authorised on the folder with its trailing slash (so
    // `secret/metadata/team/*` grants `LIST secret/metadata/team/`, and a deny on
    // `secret/metadata/private/*` holds there); any other operation keeps the slash it was
    // sent with, so `data/x/` names an (invalid) secret `x/`, never `x`.
    let slashed;
    let (acl_path, secret) = if req.op == Op::List {
        (format!("secret/{path}/"), secret)
    } else if req.trailing_slash {
        slashed = format!("{secret}/");
        (format!("secret/{path}/"), slashed.as_str())
    } else {
        (format!("secret/{path}"), secret)
    };
    match (kind, req.op) {
        ("metadata", Op::List) => {
            authorize(app, ctx, req, &acl_path, Capability::List).await?;
            let keys = app.kv.list(secret).await?;
            if keys.is_empty() {
                return Err(ApiError::NotFound);
            }
            Ok(Reply::Data(json!({ "keys": keys })))
        }
        (_, _) if secret.is_empty() || secret == "/" => {
            Err(ApiError::UnsupportedPath(INVALID_KV_PATH.into()))
        }
        ("data", Op::Read) => {
            authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            let version = match req.query.get("version") {
                Some(v) => Some(v.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest("version must be a non-negative integer".into())
                })?),
                None => None,
            };
            match app.kv.read(secret, version).await? {
                ReadOutcome::Found { data, metadata } => {
                    app.metrics.secret_reads.inc();
                    Ok(Reply::Secret { data, metadata })
                }
                ReadOutcome::Gone(data) => Ok(Reply::GoneEnvelope(data)),
            }
        }
        ("data", Op::Write) => write_data(app, ctx, req, secret, &acl_path).await,
        ("data", Op::Delete) => {
            authorize(app, ctx, req, &acl_path, Capability::Delete).await?;
            app.kv.delete_versions(secret, None).await?;
            Ok(Reply::NoContent)
        }
        ("delete" | "undelete" | "destroy", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: VersionsBody = req.json()?;
            if body.versions.is_empty() {
                return Err(ApiError::BadRequest("no version number provided".into()));
            }
            match kind {
                "delete" => app.kv.delete_versions(secret, Some(body.versions)).await?,
                "undelete" => app.kv.undelete_versions(secret, body.versions).await?,
                _ => app.kv.destroy_versions(secret, body.versions).await?,
            }
            Ok(Reply::NoContent)
        }
        ("metadata", Op::Read) => {
            authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            let meta = app.kv.metadata(secret).await?.ok_or(ApiError::NotFound)?;
            Ok(Reply::Data(meta.to_json()))
        }
        ("metadata", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: MetadataBody = req.json()?;
            let delete_after = body
                .delete_version_after
                .map(|d| {
                    crate::clock::parse_duration(&d)
                        .map(|secs| format!("{secs}s"))
                        .ok_or_else(|| {
                            ApiError::BadRequest("delete_version_after must be a duration".into())
                        })
                })
                .transpose()?;
            app.kv
                .write_metadata(
                    secret,
                    body.max_versions,
                    body.cas_required,
                    body.custom_metadata,
                    delete_after,
                )
                .await?;
            Ok(Reply::NoContent)
        }
        ("metadata", Op::Delete) => {
            authorize(app, ctx, req, &acl_path, Capability::Delete).await?;
            app.kv.delete_all(secret).await?;
            Ok(Reply::NoContent)
        }
        ("data" | "metadata" | "delete" | "undelete" | "destroy", _) => {
            Err(ApiError::MethodNotAllowed)
        }
        _ => Err(ApiError::UnsupportedPath(INVALID_KV_PATH.into())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionsBody {
    #[serde(default)]
    versions: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataBody {
    #[serde(default)]
    max_versions: Option<u64>,
    #[serde(default)]
    cas_required: Option<bool>,
    #[serde(default)]
    custom_metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    delete_version_after: Option<Value>,
}

#[derive(Deserialize)]
struct WriteBody {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    options: Option<WriteOptions>,
}

#[derive(Deserialize, Default)]
struct WriteOptions {
    #[serde(default)]
    cas: Option<u64>,
}

async fn write_data(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    secret: &str,
    acl_path: &str,
) -> Result<Reply, ApiError> {
    crate::kv::validate_path(secret)?;
    let exists = app.kv.metadata(secret).await?.is_some();
    let capability = if exists {
        Capability::Update
    } else {
        Capability::Create
    };
    authorize(app, ctx, req, acl_path, capability).await?;
    let body: WriteBody = req.json()?;
    let data: Map<String, Value> = match body.data {
        Some(Value::Object(map)) => map,
        Some(Value::Null) | None => return Err(ApiError::BadRequest("no data provided".into())),
        Some(_) => return Err(ApiError::BadRequest("'data' must be a JSON object".into())),
    };
    let cas = body.options.unwrap_or_default().cas;
    Ok(Reply::Data(app.kv.write(secret, data, cas).await?))
}

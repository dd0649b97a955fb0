//! `auth/token/*`: create, lookup, renew and revoke, with Vault's shapes.

use super::reply::Reply;
use super::{Ctx, Op, Req, authenticate, authorize, presented};
use crate::authz::Capability;
use crate::clock::{parse_duration, rfc3339_from_unix, unix_now};
use crate::error::ApiError;
use crate::state::SharedApp;
use crate::tokens::{Issued, NewToken, PresentedToken, Token, TokenRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Default TTL of tokens created through `auth/token/create`.
const DEFAULT_TTL: u64 = 3600;
/// Cap on any token's lifetime unless set lower.
const MAX_TTL: u64 = 32 * 24 * 3600;

pub async fn handle(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    path: &str,
) -> Result<Reply, ApiError> {
    let acl_path = format!("auth/token/{path}");
    match (path, req.op) {
        ("lookup-self", Op::Read | Op::Write) => {
            let record = authorize(app, ctx, req, &acl_path, Capability::Read).await?;
            let id = presented(req)?.expose();
            Ok(Reply::Data(lookup_json(&record, Some(id))))
        }
        ("renew-self", Op::Write) => {
            let record = authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: RenewBody = req.json()?;
            // A child never outlives its parent: renewals stop at the parent's expiry.
            let parent_expiry = match record.parent {
                None => None,
                Some(_) => {
                    let parent = app.tokens.parent_of(&record).await?.ok_or_else(|| {
                        ctx.audit_detail = Some("parent token is gone".into());
                        ApiError::InvalidToken
                    })?;
                    parent.expire_time
                }
            };
            let renewed = app
                .tokens
                .modify(presented(req)?, |record| {
                    renew(record, body.increment.as_ref(), parent_expiry)
                })
                .await?
                .ok_or(ApiError::InvalidToken)??;
            Ok(Reply::Auth(AuthBlock::new(Arc::new(renewed), None)))
        }
        ("revoke-self", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let removed = app.tokens.revoke(presented(req)?).await?;
            end_leases(app, removed).await;
            Ok(Reply::NoContent)
        }
        ("create" | "create-orphan", Op::Write) => {
            create(app, ctx, req, &acl_path, path == "create-orphan").await
        }
        ("lookup", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let token = body_token(req)?;
            let record = app
                .tokens
                .lookup(&token)
                .await?
                .ok_or(ApiError::BadRequest("bad token".into()))?;
            Ok(Reply::Data(lookup_json(&record, Some(token.expose()))))
        }
        ("lookup-accessor", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: AccessorBody = req.json()?;
            let (_, record) = app
                .tokens
                .lookup_accessor(&body.accessor)
                .await?
                .ok_or_else(|| ApiError::BadRequest("invalid accessor".into()))?;
            Ok(Reply::Data(lookup_json(&record, None)))
        }
        ("revoke", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let removed = app.tokens.revoke(&body_token(req)?).await?;
            end_leases(app, removed).await;
            Ok(Reply::NoContent)
        }
        ("revoke-orphan", Op::Write) => {
            // As in Vault: a root-protected path, so sudo on top of update.
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            authorize_more(app, ctx, &acl_path, Capability::Sudo).await?;
            let removed = app.tokens.revoke_orphan(&body_token(req)?).await?;
            end_leases(app, removed).await;
            Ok(Reply::NoContent)
        }
        ("revoke-accessor", Op::Write) => {
            authorize(app, ctx, req, &acl_path, Capability::Update).await?;
            let body: AccessorBody = req.json()?;
            let Some(removed) = app.tokens.revoke_accessor(&body.accessor).await? else {
                return Err(ApiError::BadRequest("invalid accessor".into()));
            };
            end_leases(app, Some(removed)).await;
            Ok(Reply::NoContent)
        }
        (
            "lookup-self" | "renew-self" | "revoke-self" | "create" | "create-orphan" | "lookup"
            | "lookup-accessor" | "revoke" | "revoke-orphan" | "revoke-accessor",
            _,
        ) => {
            authenticate(app, ctx, req).await?;
            Err(ApiError::MethodNotAllowed)
        }
        _ => Err(ApiError::UnsupportedPath(format!(
            "no handler for route \"{acl_path}\""
        ))),
    }
}

/// How long a token revocation waits for its leases' users to be dropped before answering;
/// what is not done by then is queued and retried.
const LEASE_DROP_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends the leases of the tokens a revocation removed (see `Database::revoke_for_tokens`).
async fn end_leases(app: &SharedApp, removed: Option<Vec<Vec<u8>>>) {
    if let Some(keys) = removed {
        app.database
            .revoke_for_tokens(&keys, LEASE_DROP_BUDGET)
            .await;
    }
}

/// The `token` field of a request body, parsed; a malformed token is a 400 that says why.
fn body_token(req: &Req) -> Result<PresentedToken, ApiError> {
    let body: TokenBody = req.json()?;
    Ok(body.token.parse()?)
}

/// Checks one more capability for the token `authorize` already accepted (no second use).
async fn authorize_more(
    app: &SharedApp,
    ctx: &mut Ctx,
    path: &str,
    capability: Capability,
) -> Result<(), ApiError> {
    let record = ctx.token_record.as_ref().ok_or(ApiError::InvalidToken)?;
    if app.authz.allows(record, path, capability).await {
        Ok(())
    } else {
        ctx.audit_detail = Some(format!("no policy grants {capability:?} on {path}"));
        Err(ApiError::PermissionDenied)
    }
}

#[derive(Deserialize)]
struct TokenBody {
    token: Zeroizing<String>,
}

#[derive(Deserialize)]
struct AccessorBody {
    accessor: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    #[serde(default)]
    increment: Option<Value>,
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    policies: Option<Vec<String>>,
    #[serde(default)]
    ttl: Option<Value>,
    #[serde(default)]
    explicit_max_ttl: Option<Value>,
    #[serde(default)]
    num_uses: Option<u32>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    meta: Option<BTreeMap<String, String>>,
    #[serde(default)]
    renewable: Option<bool>,
    #[serde(default)]
    no_default_policy: bool,
}

fn duration_field(value: Option<&Value>, name: &str) -> Result<Option<u64>, ApiError> {
    value
        .map(|v| {
            parse_duration(v).ok_or_else(|| {
                ApiError::BadRequest(format!("{name} must be a duration like \"30m\" or seconds"))
            })
        })
        .transpose()
}

async fn create(
    app: &SharedApp,
    ctx: &mut Ctx,
    req: &Req,
    acl_path: &str,
    orphan: bool,
) -> Result<Reply, ApiError> {
    let parent = authorize(app, ctx, req, acl_path, Capability::Update).await?;
    let body: CreateBody = req.json()?;
    // A use-limited token could otherwise multiply its uses through children.
    if parent.num_uses > 0 {
        ctx.audit_detail = Some("use-limited token tried to create a token".into());
        return Err(ApiError::BadRequest(
            "a token with a use limit cannot create tokens".into(),
        ));
    }
    let mut policies = body.policies.unwrap_or_else(|| parent.policies.clone());
    policies.retain(|p| !p.is_empty());
    if !parent.is_root()
        && let Some(extra) = policies
            .iter()
            .find(|p| !parent.policies.contains(p) && *p != "default")
    {
        ctx.audit_detail = Some(format!("child policy {extra} not held by parent"));
        return Err(ApiError::BadRequest(format!(
            "child policies must be subset of parent: \"{extra}\" is not held by this token"
        )));
    }
    if !body.no_default_policy && !policies.iter().any(|p| p == "default" || p == "root") {
        policies.push("default".into());
    }
    policies.sort();
    policies.dedup();
    let now = unix_now();
    let requested_ttl = duration_field(body.ttl.as_ref(), "ttl")?
        .filter(|t| *t > 0)
        .unwrap_or(DEFAULT_TTL);
    let requested_max = duration_field(body.explicit_max_ttl.as_ref(), "explicit_max_ttl")?
        .filter(|m| *m > 0)
        .unwrap_or(MAX_TTL)
        .min(MAX_TTL);
    // A new token never outlives the token that made it (orphans included): its TTL stops at
    // the parent's current expiry, its renewals at the latest the parent can reach.
    let (ttl, explicit_max) = if parent.is_root() {
        (requested_ttl.min(requested_max), requested_max)
    } else {
        let remaining = parent.ttl_remaining(now);
        let reachable = parent
            .latest_expiry(Some(MAX_TTL))
            .map_or(MAX_TTL, |t| t.saturating_sub(now));
        let explicit_max = requested_max.min(reachable);
        (requested_ttl.min(explicit_max).min(remaining), explicit_max)
    };
    if ttl == 0 {
        return Err(ApiError::BadRequest(
            "the parent token expires now; cannot create a child".into(),
        ));
    }
    let num_uses = body.num_uses.unwrap_or(0);
    let display_name = body.display_name.unwrap_or_else(|| "token".into());
    let new = NewToken {
        policies,
        meta: body.meta.unwrap_or_default(),
        display_name: format!("token-{}", display_name.trim_start_matches("token-")),
        ttl,
        explicit_max_ttl: explicit_max,
        num_uses,
        path: acl_path.to_owned(),
        renewable: body.renewable.unwrap_or(true),
        role: None,
        not_after: parent.expire_time.filter(|_| !parent.is_root()),
        // Templated rules are for JWT-login tokens only; a child carries no login claims.
        claims: None,
    };
    let Issued { token, record } = if orphan {
        app.tokens.create(new).await?
    } else {
        app.tokens
            .create_child(presented(req)?, new)
            .await?
            .ok_or(ApiError::InvalidToken)?
    };
    Ok(Reply::Auth(AuthBlock::new(Arc::new(record), Some(token))))
}

/// Renews up to the token's caps. `increment` overrides the original TTL.
fn renew(
    mut record: TokenRecord,
    increment: Option<&Value>,
    parent_expiry: Option<u64>,
) -> Result<TokenRecord, ApiError> {
    if !record.renewable {
        return Err(ApiError::BadRequest("lease is not renewable".into()));
    }
    let now = unix_now();
    let increment = duration_field(increment, "increment")?
        .filter(|i| *i > 0)
        .unwrap_or(record.creation_ttl);
    let mut expiry = now + increment.min(record.creation_ttl.max(1));
    for cap in [record.max_expire(Some(MAX_TTL)), parent_expiry]
        .into_iter()
        .flatten()
    {
        expiry = expiry.min(cap);
    }
    record.expire_time = Some(expiry.max(record.expire_time.unwrap_or(0)));
    record.last_renewal_time = Some(now);
    Ok(record)
}

/// The `auth` block of login, create and renew responses: the new token (none for a renewal)
/// and its record, serialized straight from them (no `Value` tree). `Debug` leaves the token
/// out; it is zeroized on drop.
pub struct AuthBlock {
    client_token: Option<Token>,
    record: Arc<TokenRecord>,
    lease_duration: u64,
}

impl AuthBlock {
    pub fn new(record: Arc<TokenRecord>, client_token: Option<Token>) -> Self {
        Self {
            lease_duration: record.ttl_remaining(unix_now()),
            client_token,
            record,
        }
    }
}

impl std::fmt::Debug for AuthBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBlock")
            .field("client_token", &self.client_token)
            .field("record", &self.record)
            .finish()
    }
}

/// Vault's field names, in sorted order (as a JSON object of them would have).
#[derive(Serialize)]
struct AuthFields<'a> {
    accessor: &'a str,
    client_token: &'a str,
    entity_id: &'a str,
    lease_duration: u64,
    /// `null` when there is none.
    metadata: Option<&'a BTreeMap<String, String>>,
    mfa_requirement: Option<()>,
    num_uses: u32,
    orphan: bool,
    policies: &'a [String],
    renewable: bool,
    token_policies: &'a [String],
    token_type: &'static str,
}

impl Serialize for AuthBlock {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = &self.record;
        AuthFields {
            accessor: &record.accessor,
            client_token: self.client_token.as_ref().map_or("", Token::expose),
            entity_id: &record.entity_id,
            lease_duration: self.lease_duration,
            metadata: (!record.meta.is_empty()).then_some(&record.meta),
            mfa_requirement: None,
            num_uses: record.num_uses,
            orphan: record.is_orphan(),
            policies: &record.policies,
            renewable: record.renewable,
            token_policies: &record.policies,
            token_type: "service",
        }
        .serialize(serializer)
    }
}

/// `data` of lookup responses. `id` is the token itself when the caller presented it.
pub fn lookup_json(record: &TokenRecord, id: Option<&str>) -> Value {
    let now = unix_now();
    json!({
        "accessor": record.accessor,
        "creation_time": record.creation_time,
        "creation_ttl": record.creation_ttl,
        "display_name": record.display_name,
        "entity_id": record.entity_id,
        "expire_time": record.expire_time.map(rfc3339_from_unix),
        "explicit_max_ttl": record.explicit_max_ttl,
        "id": id.unwrap_or(""),
        "issue_time": rfc3339_from_unix(record.creation_time),
        "last_renewal_time": record.last_renewal_time,
        "meta": if record.meta.is_empty() { Value::Null } else { json!(record.meta) },
        "num_uses": record.num_uses,
        "orphan": record.is_orphan(),
        "path": record.path,
        "policies": record.policies,
        "renewable": record.renewable,
        "role": record.role,
        "ttl": record.ttl_remaining(now),
        "type": "service",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenStore;

    /// The `auth` block as it was built before, as a `Value`: the typed block must serialize
    /// to the same bytes.
    fn as_value(record: &TokenRecord, client_token: Option<&str>, lease_duration: u64) -> Value {
        json!({
            "client_token": client_token.unwrap_or(""),
            "accessor": record.accessor,
            "policies": record.policies,
            "token_policies": record.policies,
            "metadata": if record.meta.is_empty() { Value::Null } else { json!(record.meta) },
            "lease_duration": lease_duration,
            "renewable": record.renewable,
            "entity_id": record.entity_id,
            "token_type": "service",
            "orphan": record.is_orphan(),
            "mfa_requirement": null,
            "num_uses": record.num_uses,
        })
    }

    #[tokio::test]
    async fn the_auth_block_is_vaults_and_its_debug_leaves_the_token_out() {
        let (store, _) = crate::store::memory::unsealed_store().await;
        let keyring = store.keyring().expect("unsealed");
        let parent = [9u8; 32];
        for (meta, parent, uses) in [
            (BTreeMap::new(), None, 0),
            (
                BTreeMap::from([("role".to_owned(), "deploy \"x\"".to_owned())]),
                Some(&parent[..]),
                3,
            ),
        ] {
            let new = NewToken {
                policies: vec!["default".into(), "deploy".into()],
                meta,
                ttl: 900,
                num_uses: uses,
                renewable: true,
                ..Default::default()
            };
            let (issued, _) = TokenStore::prepare(&keyring, new, None, parent).expect("prepare");
            let token = issued.token.expose().to_owned();
            let record = Arc::new(issued.record);
            let block = AuthBlock::new(record.clone(), Some(issued.token));
            let expected = as_value(&record, Some(&token), block.lease_duration);
            assert_eq!(
                serde_json::to_string(&block).expect("serializes"),
                serde_json::to_string(&expected).expect("serializes")
            );
            let renewal = AuthBlock::new(record.clone(), None);
            assert_eq!(
                serde_json::to_value(&renewal).expect("serializes"),
                as_value(&record, None, renewal.lease_duration)
            );
            let shown = format!("{:?}", Reply::Auth(block));
            assert!(!shown.contains(&token[4..]), "{shown}");
            assert!(!shown.contains(&record.accessor[4..]), "{shown}");
            assert!(shown.contains("REDACTED"), "{shown}");
        }
    }
}

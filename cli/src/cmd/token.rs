//! `vaultctl token create | lookup | revoke`: `auth/token/*`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::TokenCommand;
use crate::client::{Auth, ClientError};
use crate::cmd::{Ctx, Outcome, data_of};
use crate::error::{Doing, Error};
use crate::input::{Trim, pairs_to_map, read_line_secret};
use crate::output::{cell, duration};
use crate::secret::Exposed;

/// Runs one `token` subcommand.
pub fn run(ctx: &mut Ctx<'_>, command: TokenCommand) -> Result<Outcome, Error> {
    match command {
        TokenCommand::Create {
            policies,
            ttl,
            num_uses,
            display_name,
            metadata,
        } => {
            let request = CreateRequest {
                policies,
                ttl,
                num_uses,
                display_name,
                meta: pairs_to_map(metadata, "--metadata")?,
            };
            create(ctx, &request)
        }
        TokenCommand::Lookup { accessor } => lookup(ctx, accessor.as_deref()),
        TokenCommand::Revoke {
            accessor,
            self_,
            token_stdin,
        } => revoke(ctx, accessor.as_deref(), self_, token_stdin),
    }?;
    Ok(Outcome::Done)
}

/// Body of `POST auth/token/create`; unset fields are left to the server's defaults.
#[derive(Debug, Serialize)]
struct CreateRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_uses: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    meta: BTreeMap<String, String>,
}

fn create(ctx: &mut Ctx<'_>, request: &CreateRequest) -> Result<(), Error> {
    let action = "creating a token";
    let reply = ctx
        .client
        .post("auth/token/create", Auth::Required, request)
        .doing(action)?;
    let body = ctx.body(reply, action)?;
    let Some(auth) = body.get("auth").filter(|a| a.is_object()) else {
        return Err(Error::Request {
            action: action.to_owned(),
            source: ClientError::BadResponse {
                addr: ctx.client.addr().to_owned(),
                reason: "no \"auth\" block".to_owned(),
            },
        });
    };
    ctx.show(auth, |table| {
        let get = |key: &str| auth.get(key).unwrap_or(&Value::Null);
        table.row("token", cell(get("client_token")));
        table.row("accessor", cell(get("accessor")));
        table.value("policies", get("policies"));
        let ttl = get("lease_duration")
            .as_u64()
            .map_or_else(|| "n/a".to_owned(), duration);
        table.row("ttl", ttl);
        if let Some(map) = auth.as_object() {
            for (key, value) in map {
                let shown = ["client_token", "accessor", "policies", "lease_duration"];
                if !shown.contains(&key.as_str()) {
                    table.value(key, value);
                }
            }
        }
    })
}

fn lookup(ctx: &mut Ctx<'_>, accessor: Option<&str>) -> Result<(), Error> {
    let (action, reply) = match accessor {
        None => {
            let action = "looking up the current token";
            let reply = ctx.client.get("auth/token/lookup-self", Auth::Required);
            (action, reply)
        }
        Some(accessor) => {
            let action = "looking up the token by accessor";
            let body = json!({ "accessor": accessor });
            let reply = ctx
                .client
                .post("auth/token/lookup-accessor", Auth::Required, &body);
            (action, reply)
        }
    };
    let reply = reply.doing(action)?;
    let body = ctx.body(reply, action)?;
    let mut data = data_of(&body).clone();
    // `id` is the token itself: whoever runs this already has it, and logs must not.
    if let Some(map) = data.as_object_mut() {
        map.remove("id");
    }
    ctx.show(&data, |table| {
        table.object(
            &data,
            &[
                "display_name",
                "accessor",
                "policies",
                "ttl",
                "expire_time",
                "num_uses",
                "meta",
            ],
        );
    })
}

fn revoke(
    ctx: &mut Ctx<'_>,
    accessor: Option<&str>,
    revoke_self: bool,
    token_stdin: bool,
) -> Result<(), Error> {
    if let Some(accessor) = accessor {
        let body = json!({ "accessor": accessor });
        ctx.client
            .post("auth/token/revoke-accessor", Auth::Required, &body)
            .doing("revoking the token by accessor")?;
        return ctx.done(&format!("revoked the token with accessor {accessor}"));
    }
    if revoke_self {
        ctx.client
            .post_empty("auth/token/revoke-self", Auth::Required)
            .doing("revoking the current token")?;
        return ctx.done("revoked the current token");
    }
    if token_stdin {
        ctx.prompt("Token to revoke (input is echoed): ")?;
        let token = read_line_secret(ctx.stdin, Trim::Whitespace, "token to revoke")?;
        #[derive(Serialize)]
        struct RevokeRequest<'a> {
            token: Exposed<'a>,
        }
        ctx.client
            .post(
                "auth/token/revoke",
                Auth::Required,
                &RevokeRequest {
                    token: Exposed(&token),
                },
            )
            .doing("revoking the token read from stdin")?;
        return ctx.done("revoked the token");
    }
    Err(Error::failed(
        "revoking a token",
        "no token chosen",
        "pass --accessor A, --self or --token-stdin",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_leaves_unset_fields_out() {
        let request = CreateRequest {
            policies: vec!["deploy".into()],
            ttl: Some("1h".into()),
            num_uses: None,
            display_name: None,
            meta: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_value(&request).expect("serializes"),
            json!({"policies": ["deploy"], "ttl": "1h"})
        );
        let full = CreateRequest {
            policies: vec!["a".into(), "b".into()],
            ttl: Some("15m".into()),
            num_uses: Some(3),
            display_name: Some("ci".into()),
            meta: [("repo".to_owned(), "acme/api".to_owned())].into(),
        };
        assert_eq!(
            serde_json::to_value(&full).expect("serializes"),
            json!({"policies": ["a", "b"], "ttl": "15m", "num_uses": 3,
                   "display_name": "ci", "meta": {"repo": "acme/api"}})
        );
    }
}

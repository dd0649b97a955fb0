//! `vaultctl kv …`: KV v2 at `secret/` (`data/`, `metadata/`, `delete/`, `undelete/`, `destroy/`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{KvCommand, KvMetadataCommand};
use crate::client::{Auth, ClientError};
use crate::cmd::{Ctx, Outcome};
use crate::error::{Doing, Error};
use crate::input::{ValueSource, VersionList, load_data, pairs_to_map, parse_data_args};
use crate::kv_path::{self, api_path};
use crate::output::{Format, Table, cell, write_json};
use crate::secret::Exposed;

/// Runs one `kv` subcommand.
pub fn run(ctx: &mut Ctx<'_>, command: KvCommand) -> Result<Outcome, Error> {
    match command {
        KvCommand::Put { path, data, cas } => put(ctx, &path, data, cas),
        KvCommand::Get {
            path,
            version,
            field,
        } => get(ctx, &path, version, field.as_deref()),
        KvCommand::List { path } => list(ctx, &path),
        KvCommand::Delete { path, versions } => delete(ctx, &path, versions.as_ref()),
        KvCommand::Undelete { path, versions } => {
            versions_op(ctx, &path, "undelete", &versions, "restored")
        }
        KvCommand::Destroy { path, versions } => {
            versions_op(ctx, &path, "destroy", &versions, "destroyed")
        }
        KvCommand::Metadata(command) => metadata(ctx, command),
    }?;
    Ok(Outcome::Done)
}

/// A secret path as the user typed it and as the API wants it.
struct Target {
    shown: String,
    key: String,
}

impl Target {
    fn parse(raw: &str, action: &str) -> Result<Self, Error> {
        let key = kv_path::normalize(raw).map_err(|why| {
            Error::failed(action, why, "give a path like secret/prod/api or prod/api")
        })?;
        if key.is_empty() {
            return Err(Error::failed(
                action,
                "no secret path given",
                "give a path like secret/prod/api or prod/api",
            ));
        }
        Ok(Target {
            shown: raw.to_owned(),
            key,
        })
    }

    fn api(&self, kind: &str) -> String {
        api_path(kind, &self.key)
    }

    /// The error for a 404 on this path.
    fn missing(&self, action: String) -> Error {
        Error::failed(
            action,
            format!("no secret at {}", self.shown),
            "check the path with vaultctl kv list",
        )
    }
}

/// Turns a 404 into "no secret at PATH"; other errors keep their own explanation.
fn or_missing<T>(
    result: Result<T, ClientError>,
    target: &Target,
    action: String,
) -> Result<T, Error> {
    match result {
        Err(ClientError::NotFound { .. }) => Err(target.missing(action)),
        other => other.doing(action),
    }
}

#[derive(Serialize)]
struct PutRequest<'a> {
    data: BTreeMap<&'a str, Exposed<'a>>,
    options: PutOptions,
}

#[derive(Serialize)]
struct PutOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    cas: Option<u64>,
}

fn put(ctx: &mut Ctx<'_>, raw: &str, args: Vec<String>, cas: Option<u64>) -> Result<(), Error> {
    let action = format!("writing {raw}");
    let target = Target::parse(raw, &action)?;
    let args = parse_data_args(args)?;
    if let Some(arg) = args.iter().find(|a| matches!(a.source, ValueSource::Stdin)) {
        let prompt = format!(
            "Value for {:?} (input is echoed; end with Ctrl-D): ",
            arg.key
        );
        ctx.prompt(&prompt)?;
    }
    let data = load_data(args, ctx.stdin)?;
    let request = PutRequest {
        data: data.iter().map(|(k, v)| (k.as_str(), Exposed(v))).collect(),
        options: PutOptions { cas },
    };
    let reply = match ctx
        .client
        .post(&target.api("data"), Auth::Required, &request)
    {
        Err(ClientError::BadRequest { message }) if message.contains("check-and-set") => {
            let fix = if message.contains("required") {
                "this secret requires --cas N, where N is its current version (0 to create it)"
            } else {
                "read the current version with vaultctl kv metadata get and pass it as --cas"
            };
            return Err(Error::failed(action, message, fix));
        }
        other => or_missing(other, &target, action.clone())?,
    };
    let body = ctx.body(reply, &action)?;
    let written = body.get("data").unwrap_or(&Value::Null);
    ctx.show(written, |table| {
        table.object(written, &["version", "created_time"]);
    })
}

fn get(
    ctx: &mut Ctx<'_>,
    raw: &str,
    version: Option<u64>,
    field: Option<&str>,
) -> Result<(), Error> {
    let action = format!("reading {raw}");
    let target = Target::parse(raw, &action)?;
    let mut path = target.api("data");
    if let Some(version) = version {
        path.push_str(&format!("?version={version}"));
    }
    let body = match ctx.client.get(&path, Auth::Required) {
        Ok(reply) => ctx.body(reply, &action)?,
        Err(ClientError::NotFound { body }) => {
            return Err(
                match (not_found(&target, body.as_ref(), action.clone()), version) {
                    (Error::Failed { why, .. }, Some(version)) if why.starts_with("no secret") => {
                        Error::failed(
                            action,
                            format!("{why} version {version}"),
                            format!(
                                "list its versions with vaultctl kv metadata get {}",
                                target.shown
                            ),
                        )
                    }
                    (error, _) => error,
                },
            );
        }
        Err(other) => return Err(other).doing(action),
    };
    let result = body.get("data").unwrap_or(&Value::Null);
    let Some(secret) = result.get("data").and_then(Value::as_object) else {
        // A 200 without data is how some servers report a deleted version.
        return Err(not_found(&target, Some(&body), action));
    };
    if let Some(name) = field {
        let Some(value) = secret.get(name) else {
            let fields: Vec<&str> = secret.keys().map(String::as_str).collect();
            return Err(Error::failed(
                action,
                format!("no field {name:?} in {}", target.shown),
                format!("it has: {}", fields.join(", ")),
            ));
        };
        match ctx.format {
            Format::Json => write_json(ctx.out, value)?,
            Format::Table => match value {
                Value::String(text) => writeln!(ctx.out, "{text}")?,
                other => writeln!(ctx.out, "{other}")?,
            },
        }
        return Ok(());
    }
    match ctx.format {
        Format::Json => write_json(ctx.out, result)?,
        Format::Table => {
            let metadata = result.get("metadata").unwrap_or(&Value::Null);
            writeln!(ctx.out, "=== Metadata ===")?;
            Table::new()
                .object(metadata, &["version", "created_time"])
                .write(ctx.out)?;
            writeln!(ctx.out, "\n=== Data ===")?;
            let mut rows = Table::new();
            for (key, value) in secret {
                rows.row(key.as_str(), cell(value));
            }
            rows.write(ctx.out)?;
        }
    }
    Ok(())
}

/// Explains a 404 on a read: a deleted or destroyed version carries its metadata.
fn not_found(target: &Target, body: Option<&Value>, action: String) -> Error {
    let metadata = body
        .and_then(|b| b.get("data"))
        .and_then(|d| d.get("metadata"))
        .filter(|m| m.is_object());
    let Some(metadata) = metadata else {
        return target.missing(action);
    };
    let version = metadata
        .get("version")
        .and_then(Value::as_u64)
        .map_or_else(|| "this version".to_owned(), |v| format!("version {v}"));
    let number = metadata.get("version").and_then(Value::as_u64).unwrap_or(0);
    if metadata.get("destroyed").and_then(Value::as_bool) == Some(true) {
        return Error::failed(
            action,
            format!("{version} of {} was destroyed", target.shown),
            "it cannot be recovered; read another version with --version N",
        );
    }
    match metadata.get("deletion_time").and_then(Value::as_str) {
        Some(deleted) if !deleted.is_empty() => Error::failed(
            action,
            format!("{version} of {} was deleted at {deleted}", target.shown),
            format!(
                "restore it with vaultctl kv undelete {} --versions {number}",
                target.shown
            ),
        ),
        _ => target.missing(action),
    }
}

fn list(ctx: &mut Ctx<'_>, raw: &str) -> Result<(), Error> {
    let action = format!("listing {}", if raw.is_empty() { "secret/" } else { raw });
    let folder = kv_path::normalize(raw)
        .map_err(|why| Error::failed(&action, why, "give a folder like secret/prod"))?;
    let path = if folder.is_empty() {
        "secret/metadata/?list=true".to_owned()
    } else {
        format!("{}?list=true", api_path("metadata", &folder))
    };
    let keys = match ctx.client.get(&path, Auth::Required) {
        // Vault answers an empty folder with 404.
        Err(ClientError::NotFound { .. }) | Ok(None) => Vec::new(),
        Ok(Some(body)) => body
            .get("data")
            .and_then(|d| d.get("keys"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Err(other) => return Err(other).doing(action),
    };
    match ctx.format {
        Format::Json => write_json(ctx.out, &Value::Array(keys))?,
        Format::Table => {
            for key in &keys {
                writeln!(ctx.out, "{}", cell(key))?;
            }
        }
    }
    Ok(())
}

fn delete(ctx: &mut Ctx<'_>, raw: &str, versions: Option<&VersionList>) -> Result<(), Error> {
    let action = format!("deleting {raw}");
    let target = Target::parse(raw, &action)?;
    match versions {
        None => {
            let result = ctx.client.delete(&target.api("data"), Auth::Required);
            or_missing(result, &target, action)?;
            ctx.done(&format!("deleted the latest version of {raw}"))
        }
        Some(versions) => versions_op(ctx, raw, "delete", versions, "deleted"),
    }
}

/// `POST secret/{delete,undelete,destroy}/PATH {"versions":[…]}`.
fn versions_op(
    ctx: &mut Ctx<'_>,
    raw: &str,
    kind: &str,
    versions: &VersionList,
    done: &str,
) -> Result<(), Error> {
    let verb = match kind {
        "delete" => "deleting",
        "undelete" => "restoring",
        _ => "destroying",
    };
    let action = format!("{verb} versions of {raw}");
    let target = Target::parse(raw, &action)?;
    let body = json!({ "versions": versions.0 });
    let result = ctx.client.post(&target.api(kind), Auth::Required, &body);
    or_missing(result, &target, action)?;
    let list: Vec<String> = versions.0.iter().map(u64::to_string).collect();
    let noun = if list.len() == 1 {
        "version"
    } else {
        "versions"
    };
    ctx.done(&format!("{done} {noun} {} of {raw}", list.join(", ")))
}

#[derive(Serialize)]
struct MetadataRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_versions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cas_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_metadata: Option<BTreeMap<String, String>>,
}

fn metadata(ctx: &mut Ctx<'_>, command: KvMetadataCommand) -> Result<(), Error> {
    match command {
        KvMetadataCommand::Get { path: raw } => {
            let action = format!("reading the metadata of {raw}");
            let target = Target::parse(&raw, &action)?;
            let result = ctx.client.get(&target.api("metadata"), Auth::Required);
            let reply = or_missing(result, &target, action.clone())?;
            let body = ctx.body(reply, &action)?;
            let data = body.get("data").unwrap_or(&Value::Null);
            ctx.show(data, |table| {
                table.object(
                    data,
                    &[
                        "current_version",
                        "oldest_version",
                        "max_versions",
                        "cas_required",
                        "delete_version_after",
                        "created_time",
                        "updated_time",
                        "custom_metadata",
                    ],
                );
            })
        }
        KvMetadataCommand::Put {
            path: raw,
            max_versions,
            cas_required,
            custom_metadata,
        } => {
            let action = format!("writing the metadata of {raw}");
            let target = Target::parse(&raw, &action)?;
            let custom = if custom_metadata.is_empty() {
                None
            } else {
                Some(pairs_to_map(custom_metadata, "--custom-metadata")?)
            };
            let request = MetadataRequest {
                max_versions,
                cas_required,
                custom_metadata: custom,
            };
            let result = ctx
                .client
                .post(&target.api("metadata"), Auth::Required, &request);
            or_missing(result, &target, action)?;
            ctx.done(&format!("updated the metadata of {raw}"))
        }
        KvMetadataCommand::Delete { path: raw } => {
            let action = format!("deleting all versions and metadata of {raw}");
            let target = Target::parse(&raw, &action)?;
            let result = ctx.client.delete(&target.api("metadata"), Auth::Required);
            or_missing(result, &target, action)?;
            ctx.done(&format!("deleted all versions and metadata of {raw}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("secret/app", "reading secret/app").expect("valid path")
    }

    #[test]
    fn targets() {
        let t = target();
        assert_eq!(t.api("data"), "secret/data/app");
        assert!(Target::parse("secret/", "x").is_err());
        assert!(Target::parse("", "x").is_err());
    }

    #[test]
    fn not_found_explains_deleted_versions() {
        let t = target();
        let deleted = json!({"data": {"data": null, "metadata": {
            "version": 3, "deletion_time": "2024-01-01T00:00:00Z", "destroyed": false}}});
        let text = not_found(&t, Some(&deleted), "reading secret/app".into()).to_string();
        assert!(
            text.contains("version 3 of secret/app was deleted"),
            "{text}"
        );
        assert!(
            text.contains("vaultctl kv undelete secret/app --versions 3"),
            "{text}"
        );

        let destroyed = json!({"data": {"data": null, "metadata": {
            "version": 2, "deletion_time": "", "destroyed": true}}});
        let text = not_found(&t, Some(&destroyed), "r".into()).to_string();
        assert!(text.contains("destroyed"), "{text}");

        let plain = json!({"errors": []});
        let text = not_found(&t, Some(&plain), "reading secret/app".into()).to_string();
        assert_eq!(
            text,
            "reading secret/app: no secret at secret/app — check the path with vaultctl kv list"
        );
    }
}

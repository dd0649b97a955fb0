//! Choosing the secrets `exec` and `env` inject: every key of each `--secret PATH`, plus the
//! `NAME=secret/path#key` lines of `--env-file`, narrowed by `--only`. Everything is resolved
//! and checked (names, duplicates, missing secrets and keys, denied paths) before anything runs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::client::{Auth, Client, ClientError};
use crate::error::Error;
use crate::kv_path;
use crate::secret::Secret;

/// One variable to inject.
pub struct Injected {
    /// The environment variable's name.
    pub name: String,
    /// Its value.
    pub value: Secret,
}

/// One `NAME=path#key` mapping from an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The environment variable to set.
    pub name: String,
    /// The KV secret it comes from (`prod/api`), or a dynamic credential's path
    /// (`database/creds/deploy`).
    pub path: String,
    /// Whether `path` is a dynamic credential ([`super::dynamic`]).
    pub dynamic: bool,
    /// The field of that secret.
    pub key: String,
}

/// Why a key of a `--secret` may not set variable `name` ([`super::env_names`]), if so.
pub fn refused_env_name(name: &str) -> Option<&'static str> {
    super::env_names::refused(name).or_else(|| {
        super::credential::CREDENTIAL_VARS
            .contains(&name)
            .then_some("vaultctl's credentials")
    })
}

fn dynamic_refused(path: &str) -> Error {
    Error::failed(
        format!("using {path}"),
        "a dynamic credential lives only as long as the command vaultctl exec runs",
        "use vaultctl exec",
    )
}

/// Whether `name` is a portable environment variable name.
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Parses an env file: `NAME=secret/path#key` per line; blank lines and `#` comments allowed.
/// Errors name the line number, never its content (it might hold a pasted secret).
pub fn parse_env_file(text: &str, file: &str) -> Result<Vec<Mapping>, Error> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            Error::failed(
                format!("reading {file} line {}", index + 1),
                why,
                "write lines as NAME=secret/path#key",
            )
        };
        let line = line.strip_prefix("export ").unwrap_or(line).trim();
        let (name, reference) = line.split_once('=').ok_or_else(|| bad("no '='"))?;
        let name = name.trim();
        if !valid_env_name(name) {
            return Err(bad("the name is not a valid environment variable name"));
        }
        let (path, key) = reference
            .trim()
            .rsplit_once('#')
            .ok_or_else(|| bad("the reference has no '#key'"))?;
        if key.is_empty() {
            return Err(bad("the key after '#' is empty"));
        }
        let dynamic = super::dynamic::is_dynamic(path.trim());
        let path = if dynamic {
            super::dynamic::normalize(path.trim())
        } else {
            kv_path::normalize(path)
        }
        .map_err(|why| bad(&why))?;
        out.push(Mapping {
            name: name.to_owned(),
            path,
            key: key.to_owned(),
            dynamic,
        });
    }
    Ok(out)
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads one secret's data, naming the path in every error.
fn read(client: &Client, path: &str) -> Result<serde_json::Map<String, Value>, Error> {
    let action = format!("reading secret/{path}");
    match client.get(&kv_path::api_path("data", path), Auth::Required) {
        Ok(Some(body)) => match body.pointer("/data/data") {
            Some(Value::Object(map)) => Ok(map.clone()),
            _ => Err(Error::failed(
                action,
                "the answer holds no data",
                "check the path",
            )),
        },
        Ok(None) => Err(Error::failed(action, "empty answer", "check VAULTCTL_ADDR")),
        Err(ClientError::NotFound { .. }) => Err(Error::failed(
            action,
            "no such secret (or its latest version is deleted)",
            format!("check the path, or store it with vaultctl kv put secret/{path} …"),
        )),
        Err(ClientError::PermissionDenied) => Err(Error::failed(
            action,
            "permission denied",
            "the role's policies do not grant read on this path: check with vaultctl policy test",
        )),
        Err(source) => Err(Error::Request { action, source }),
    }
}

/// Resolves `--secret` paths, env-file mappings and `--credential` paths into variables,
/// checking everything. Dynamic credentials are minted through `leases` (one per path); without
/// it (`vaultctl env`, `mask`) they are refused: they live only as long as an `exec` run.
pub fn resolve(
    client: &Client,
    secret_paths: &[String],
    mappings: &[Mapping],
    only: Option<&[String]>,
    mut leases: Option<&mut super::dynamic::Leases>,
    credential_paths: &[String],
) -> Result<Vec<Injected>, Error> {
    let mut out: Vec<Injected> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cache: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    let mut add =
        |name: String, value: Secret, origin: &str, out: &mut Vec<Injected>| -> Result<(), Error> {
            if !valid_env_name(&name) {
                return Err(Error::failed(
                    format!("injecting {origin}"),
                    format!("key {name:?} is not a valid environment variable name"),
                    "rename the key, or map it with --env-file NAME=path#key",
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(Error::failed(
                    format!("injecting {origin}"),
                    format!("{name} is given twice"),
                    "remove the duplicate, or narrow with --only",
                ));
            }
            out.push(Injected { name, value });
            Ok(())
        };
    let wanted = |name: &str| only.is_none_or(|o| o.iter().any(|n| n == name));
    for raw in secret_paths {
        let path = kv_path::normalize(raw).map_err(|why| {
            Error::failed(
                format!("using --secret {raw}"),
                why,
                "give a path like secret/prod/api",
            )
        })?;
        if !cache.contains_key(&path) {
            cache.insert(path.clone(), read(client, &path)?);
        }
        for (key, value) in &cache[&path] {
            if wanted(key) {
                if let Some(why) = refused_env_name(key) {
                    return Err(Error::failed(
                        format!("injecting secret/{path}"),
                        format!("key {key} would change how programs start or behave ({why})"),
                        format!(
                            "rename the key, or map it deliberately with --env-file ({key}=secret/{path}#{key})"
                        ),
                    ));
                }
                add(
                    key.clone(),
                    Secret::new(value_text(value)),
                    &format!("secret/{path}"),
                    &mut out,
                )?;
            }
        }
    }
    for raw in credential_paths {
        let path = super::dynamic::normalize(raw).map_err(|why| {
            Error::failed(
                format!("using --credential {raw}"),
                why,
                "give a path like database/creds/deploy",
            )
        })?;
        let leases = leases
            .as_deref_mut()
            .ok_or_else(|| dynamic_refused(&path))?;
        let lease = leases.get(client, &path)?;
        for (name, value) in super::dynamic::variables(&path, lease)? {
            if wanted(&name) {
                add(name, value, &path, &mut out)?;
            }
        }
    }
    for mapping in mappings.iter().filter(|m| m.dynamic) {
        let leases = leases
            .as_deref_mut()
            .ok_or_else(|| dynamic_refused(&mapping.path))?;
        let lease = leases.get(client, &mapping.path)?;
        let value = lease.data.get(&mapping.key).ok_or_else(|| {
            Error::failed(
                format!("injecting {}", mapping.name),
                format!("{} has no field {:?}", mapping.path, mapping.key),
                format!(
                    "its fields are: {}",
                    lease.data.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        if wanted(&mapping.name) {
            add(
                mapping.name.clone(),
                Secret::new(value.expose().to_owned()),
                &mapping.path,
                &mut out,
            )?;
        }
    }
    for mapping in mappings.iter().filter(|m| !m.dynamic) {
        if !cache.contains_key(&mapping.path) {
            cache.insert(mapping.path.clone(), read(client, &mapping.path)?);
        }
        let value = cache[&mapping.path].get(&mapping.key).ok_or_else(|| {
            Error::failed(
                format!("injecting {}", mapping.name),
                format!("secret/{} has no key {:?}", mapping.path, mapping.key),
                format!("check the key with vaultctl kv get secret/{}", mapping.path),
            )
        })?;
        if wanted(&mapping.name) {
            add(
                mapping.name.clone(),
                Secret::new(value_text(value)),
                &format!("secret/{}", mapping.path),
                &mut out,
            )?;
        }
    }
    if let Some(only) = only
        && let Some(missing) = only.iter().find(|n| !seen.contains(*n))
    {
        return Err(Error::failed(
            "applying --only",
            format!("{missing} is not among the chosen secrets"),
            "check the names given to --only",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        for ok in ["A", "_x", "DB_URL", "a1"] {
            assert!(valid_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "é", "A=B"] {
            assert!(!valid_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn env_file_lines() {
        let parsed = parse_env_file(
            "# comment\n\nDB_URL=secret/prod/api#database_url\nexport K = prod/x#k\n",
            "f",
        )
        .expect("valid");
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0],
            Mapping {
                name: "DB_URL".into(),
                path: "prod/api".into(),
                key: "database_url".into(),
                dynamic: false,
            }
        );
        assert_eq!(parsed[1].path, "prod/x");
        for bad in [
            "NOEQUALS",
            "1X=a#b",
            "X=path-without-key",
            "X=a#",
            "X=../a#b",
        ] {
            let err = parse_env_file(bad, "f").expect_err(bad).to_string();
            assert!(err.contains("line 1"), "{err}");
            assert!(!err.contains(bad), "line content echoed: {err}");
        }
    }
}

#[cfg(test)]
mod hostile_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary env files: parsed or refused with a line number, never a panic, and an
        /// error never repeats the file's content.
        #[test]
        fn env_files_never_panic(lines in prop::collection::vec(".{0,60}", 0..8)) {
            let text = lines.join("\n");
            match parse_env_file(&text, "f") {
                Ok(mappings) => {
                    for m in mappings {
                        prop_assert!(valid_env_name(&m.name));
                        prop_assert!(!m.key.is_empty());
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("line ")),
            }
        }
    }
}

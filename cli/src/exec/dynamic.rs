//! Dynamic credentials for `vaultctl exec`: minted when the run starts (one lease per path,
//! however often the path is referenced, so a user and its password always match), masked like
//! any secret, and revoked with the run's token when the command ends.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::client::{Auth, Client, ClientError};
use crate::error::Error;
use crate::secret::Secret;

/// The engines whose paths `--credential` and env files may name.
const PREFIXES: [&str; 1] = ["database/creds/"];

/// Whether `reference` names a dynamic credential (`database/creds/ROLE`) rather than a KV
/// secret.
pub fn is_dynamic(reference: &str) -> bool {
    PREFIXES
        .iter()
        .any(|p| reference.trim_start_matches('/').starts_with(p))
}

/// Checks a dynamic path: a known engine prefix, then one name of safe characters.
pub fn normalize(raw: &str) -> Result<String, String> {
    let path = raw.trim_matches('/');
    let Some(prefix) = PREFIXES.iter().find(|p| path.starts_with(**p)) else {
        return Err(format!(
            "not a dynamic credential path (known: {})",
            PREFIXES.map(|p| format!("{p}ROLE")).join(", ")
        ));
    };
    let name = &path[prefix.len()..];
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        return Err("the role name is 1-128 of A-Z a-z 0-9 _ - .".into());
    }
    Ok(path.to_owned())
}

/// One minted credential.
pub struct Lease {
    /// `lease_id`, to revoke it.
    pub id: String,
    /// Its fields (`username`, `password`, …), each a secret.
    pub data: BTreeMap<String, Secret>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("fields", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The credentials minted in this run, by path.
#[derive(Debug, Default)]
pub struct Leases {
    by_path: BTreeMap<String, Lease>,
}

impl Leases {
    /// The lease of `path`, minting it on first use.
    pub fn get(&mut self, client: &Client, path: &str) -> Result<&Lease, Error> {
        if !self.by_path.contains_key(path) {
            let lease = mint(client, path)?;
            self.by_path.insert(path.to_owned(), lease);
        }
        self.by_path
            .get(path)
            .ok_or_else(|| Error::failed(format!("reading {path}"), "lost the lease", "retry"))
    }

    /// Every lease id, to revoke at the end.
    pub fn ids(&self) -> Vec<String> {
        self.by_path.values().map(|l| l.id.clone()).collect()
    }

    /// Every field value, to mask.
    pub fn values(&self) -> impl Iterator<Item = &Secret> {
        self.by_path.values().flat_map(|l| l.data.values())
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn mint(client: &Client, path: &str) -> Result<Lease, Error> {
    let action = format!("minting {path}");
    let body = match client.get(path, Auth::Required) {
        Ok(Some(body)) => body,
        Ok(None) => return Err(Error::failed(action, "empty answer", "check VAULTCTL_ADDR")),
        Err(ClientError::NotFound { .. }) => {
            return Err(Error::failed(
                action,
                "no such role",
                "check the role name (vaultctl's admin: LIST database/roles)",
            ));
        }
        Err(ClientError::PermissionDenied) => {
            return Err(Error::failed(
                action,
                "permission denied",
                format!("the token's policies do not grant read on {path}"),
            ));
        }
        Err(source) => return Err(Error::Request { action, source }),
    };
    let id = body
        .get("lease_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::failed(&action, "the answer has no lease_id", "check the path"))?
        .to_owned();
    let data: Map<String, Value> = match body.get("data") {
        Some(Value::Object(map)) => map.clone(),
        _ => {
            return Err(Error::failed(
                action,
                "the answer holds no data",
                "check the path",
            ));
        }
    };
    Ok(Lease {
        id,
        data: data
            .iter()
            .map(|(k, v)| (k.clone(), Secret::new(text(v))))
            .collect(),
    })
}

/// The variables `--credential PATH` sets: PostgreSQL's own for `database/creds/…`
/// (`PGUSER`, `PGPASSWORD`), so `psql` and libpq-based tools need nothing else.
pub fn variables(path: &str, lease: &Lease) -> Result<Vec<(String, Secret)>, Error> {
    let field = |name: &str| {
        lease.data.get(name).ok_or_else(|| {
            Error::failed(
                format!("injecting {path}"),
                format!("the credential has no field {name:?}"),
                "map its fields with --env-file NAME=PATH#FIELD",
            )
        })
    };
    if path.starts_with("database/creds/") {
        return Ok(vec![
            (
                "PGUSER".into(),
                Secret::new(field("username")?.expose().to_owned()),
            ),
            (
                "PGPASSWORD".into(),
                Secret::new(field("password")?.expose().to_owned()),
            ),
        ]);
    }
    Err(Error::failed(
        format!("injecting {path}"),
        "vaultctl does not know which variables this engine's credential sets",
        "map its fields with --env-file NAME=PATH#FIELD",
    ))
}

/// Revokes `ids` one by one (for a token vaultctl did not obtain itself: revoking an obtained
/// token revokes its leases). Returns the failures, to report.
pub fn revoke(client: &Client, ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter_map(|id| {
            client
                .put(
                    "sys/leases/revoke",
                    Auth::Required,
                    &serde_json::json!({ "lease_id": id }),
                )
                .err()
                .map(|e| format!("revoking lease {id}: {e}; it ends at its TTL"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_paths() {
        assert!(is_dynamic("database/creds/deploy"));
        assert!(is_dynamic("/database/creds/deploy"));
        assert!(!is_dynamic("secret/database/creds/x"));
        assert_eq!(
            normalize("database/creds/deploy/").as_deref(),
            Ok("database/creds/deploy")
        );
        for bad in [
            "database/creds/",
            "database/creds/a/b",
            "database/creds/../x",
            "kv/x",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}

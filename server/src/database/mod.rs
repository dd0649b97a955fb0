//! Dynamic PostgreSQL credentials, with Vault's `database/` API: vaultd holds an admin
//! connection per database and mints a new PostgreSQL role for each request, under a lease
//! that ends at its TTL, on revoke, or when the token that obtained it is revoked.
//!
//! - Connections (`config/<name>` in [`Tree::Database`]): the URL template, the admin user
//!   and its password (sealed like every record, never returned), `allowed_roles`.
//! - Roles (`role/<name>`): statement templates and TTLs.
//! - [`pg`]: connecting and running statements; every error message is scrubbed of secrets.
//! - [`leases`]: minting under a lease, renewal, revocation with durable retry, the sweeper.
//!
//! A minted password is never stored: only its lease (username, statements to drop it,
//! times, owner token) is.

pub(crate) mod leases;
pub(crate) mod pg;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::store::sealed::SealedStore;
use crate::store::{StoreError, Tree};

/// The only plugin this engine speaks.
pub(crate) const PLUGIN: &str = "postgresql-database-plugin";
/// `default_ttl` / `max_ttl` when a role leaves them at 0.
pub(crate) const DEFAULT_TTL: u64 = 3600;
pub(crate) const DEFAULT_MAX_TTL: u64 = 24 * 3600;
/// Longest TTL a role may set.
const MAX_TTL: u64 = 32 * 24 * 3600;
/// Largest statement set accepted.
const MAX_STATEMENT_BYTES: usize = 64 * 1024;
/// Placeholders a statement may use.
const PLACEHOLDERS: [&str; 4] = ["name", "username", "password", "expiration"];

/// Revocation when a role sets none: cut the user's sessions, hand what it owns to the admin
/// user, drop its privileges, drop it. Runs only while the role exists.
pub(crate) const DEFAULT_REVOCATION: [&str; 5] = [
    "GRANT \"{{name}}\" TO CURRENT_USER",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}' AND pid <> pg_backend_pid()",
    "REASSIGN OWNED BY \"{{name}}\" TO CURRENT_USER",
    "DROP OWNED BY \"{{name}}\"",
    "DROP ROLE IF EXISTS \"{{name}}\"",
];
/// Renewal when a role sets none.
pub(crate) const DEFAULT_RENEW: &str = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'";
/// Root rotation when a connection sets none.
const DEFAULT_ROOT_ROTATION: &str = "ALTER ROLE CURRENT_USER WITH PASSWORD '{{password}}'";

/// Why a database request failed. Messages never hold a password.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// Bad input; nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// No such connection, role or lease.
    #[error("{0}")]
    Missing(String),
    /// PostgreSQL refused a statement (the statements or the grants are at fault).
    #[error("{0}")]
    Refused(String),
    /// PostgreSQL refused the admin password.
    #[error("{0}")]
    AuthFailed(String),
    /// PostgreSQL could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// A revocation could not finish now; it is queued and retried until it does.
    #[error("{0}")]
    Pending(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, DatabaseError>;

fn invalid(message: impl Into<String>) -> DatabaseError {
    DatabaseError::Invalid(message.into())
}

/// A configured database: how to reach it as the admin user.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Connection {
    pub connection_url: String,
    pub username: String,
    pub password: Zeroizing<String>,
    /// A rotation in flight: the password `rotate-root` is setting (see [`Database::rotate_root`]).
    #[serde(default)]
    pub next_password: Option<Zeroizing<String>>,
    pub allowed_roles: Vec<String>,
    pub verify_connection: bool,
    pub root_rotation_statements: Vec<String>,
    pub max_open_connections: u32,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("connection_url", &self.connection_url)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn allows(&self, role: &str) -> bool {
        self.allowed_roles.iter().any(|pattern| {
            pattern == "*"
                || pattern == role
                || pattern
                    .strip_suffix('*')
                    .is_some_and(|prefix| role.starts_with(prefix))
        })
    }

    pub(crate) fn target(&self) -> Result<pg::Target> {
        pg::target(&self.connection_url, &self.username, &self.password)
    }

    fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.password.as_str()];
        if let Some(next) = &self.next_password {
            secrets.push(next.as_str());
        }
        secrets
    }
}

/// A role: how to create, renew and drop a user, and for how long.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Role {
    pub db_name: String,
    pub creation_statements: Vec<String>,
    pub revocation_statements: Vec<String>,
    pub renew_statements: Vec<String>,
    pub default_ttl: u64,
    pub max_ttl: u64,
}

impl Role {
    /// The lease TTL and the longest a lease may be renewed to, as the role sets them.
    pub(crate) fn ttls(&self) -> (u64, u64) {
        let max = if self.max_ttl == 0 {
            DEFAULT_MAX_TTL
        } else {
            self.max_ttl
        };
        let ttl = if self.default_ttl == 0 {
            DEFAULT_TTL
        } else {
            self.default_ttl
        };
        (ttl.min(max), max)
    }
}

fn config_key(name: &str) -> Vec<u8> {
    format!("config/{name}").into_bytes()
}

fn role_key(name: &str) -> Vec<u8> {
    format!("role/{name}").into_bytes()
}

/// A request body taken field by field, so an unknown field is named in the error.
struct Fields(Map<String, Value>);

impl Fields {
    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name).filter(|v| !v.is_null())
    }

    fn string(&mut self, name: &str) -> Result<Option<String>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
        }
    }

    fn boolean(&mut self, name: &str) -> Result<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(invalid(format!("{name} must be true or false"))),
        }
    }

    fn seconds(&mut self, name: &str) -> Result<Option<u64>> {
        self.take(name)
            .map(|v| {
                crate::clock::parse_duration(&v).ok_or_else(|| {
                    invalid(format!(
                        "{name} must be a duration such as \"1h\" or seconds"
                    ))
                })
            })
            .transpose()
    }

    /// A list given as a JSON list, or as one string (comma-separated when `comma`).
    fn list(&mut self, name: &str, comma: bool) -> Result<Option<Vec<String>>> {
        let items = match self.take(name) {
            None => return Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(invalid(format!("{name} must be a list of strings"))),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(Value::String(s)) => match serde_json::from_str::<Vec<String>>(&s) {
                Ok(items) => items,
                Err(_) if comma => s.split(',').map(str::to_owned).collect(),
                Err(_) => vec![s],
            },
            Some(_) => return Err(invalid(format!("{name} must be a list of strings"))),
        };
        Ok(Some(
            items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    }

    fn finish(self) -> Result<()> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(invalid(format!(
                "unknown field {:?}",
                unknown.chars().take(64).collect::<String>()
            ))),
        }
    }
}

/// Checks a statement set: its size and that every `{{…}}` is a known placeholder.
fn check_statements(name: &str, statements: &[String]) -> Result<()> {
    if statements.iter().map(String::len).sum::<usize>() > MAX_STATEMENT_BYTES {
        return Err(invalid(format!(
            "{name} are larger than {MAX_STATEMENT_BYTES} bytes"
        )));
    }
    for statement in statements {
        let mut rest = statement.as_str();
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| invalid(format!("{name}: a {{{{ is not closed by }}}}")))?;
            let placeholder = after[..close].trim();
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(invalid(format!(
                    "{name}: unknown placeholder {{{{{}}}}} (known: {{{{name}}}}, {{{{password}}}}, {{{{expiration}}}})",
                    placeholder.chars().take(32).collect::<String>()
                )));
            }
            rest = &after[close + 2..];
        }
    }
    Ok(())
}

/// The database engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    store: SealedStore,
    leases: leases::Leases,
    /// Set when this process alone can write the store (sled): a lease another process left
    /// half-created is then certainly abandoned.
    exclusive: Arc<AtomicBool>,
    /// Bounds concurrent admin connections per configured database.
    gates: Arc<std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Semaphore>>>>,
    /// One statement transaction at a time per database from this process: concurrent grants
    /// and drops on one table conflict in PostgreSQL's catalog (other replicas' conflicts are
    /// retried, see `pg::run_in_transaction`).
    serial: Arc<std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Database {
    pub fn new(store: SealedStore, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            leases: leases::Leases::new(store.clone()),
            store,
            exclusive: Arc::default(),
            gates: Arc::default(),
            serial: Arc::default(),
            metrics,
        }
    }

    /// Declares that no other process writes this store (the sled backend).
    pub fn set_exclusive(&self) {
        self.exclusive.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_exclusive(&self) -> bool {
        self.exclusive.load(Ordering::SeqCst)
    }

    /// Waits for one of the connection's `max_open_connections` slots.
    async fn gate(&self, name: &str, size: u32) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            gates
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(size.max(1) as usize)))
                .clone()
        };
        gate.acquire_owned().await.ok()
    }

    /// Waits for this process's turn to run statements on database `name`.
    pub(crate) async fn serially(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .serial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    pub(crate) async fn connection(&self, name: &str) -> Result<Option<Connection>> {
        Ok(self
            .store
            .get_json(Tree::Database, &config_key(name))
            .await?)
    }

    pub(crate) async fn role(&self, name: &str) -> Result<Option<Role>> {
        Ok(self.store.get_json(Tree::Database, &role_key(name)).await?)
    }

    async fn names(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .scan_keys(Tree::Database, prefix.as_bytes())
            .await?
            .into_iter()
            .filter_map(|k| String::from_utf8(k[prefix.len()..].to_vec()).ok())
            .collect())
    }

    pub async fn list_connections(&self) -> Result<Vec<String>> {
        self.names("config/").await
    }

    pub async fn list_roles(&self) -> Result<Vec<String>> {
        self.names("role/").await
    }

    pub async fn exists(&self, kind: &str, name: &str) -> Result<bool> {
        let key = if kind == "config" {
            config_key(name)
        } else {
            role_key(name)
        };
        Ok(self.store.get(Tree::Database, &key).await?.is_some())
    }

    /// Connects as the admin user of `connection` (named `name`). A password refused while a
    /// rotation was in flight is retried with the rotation's new password, which then becomes
    /// the stored one: a vaultd that died mid-rotation never loses the admin password.
    pub(crate) async fn admin_client(
        &self,
        name: &str,
        connection: &Connection,
    ) -> Result<(tokio_postgres::Client, tokio::sync::OwnedSemaphorePermit)> {
        let permit = self
            .gate(name, connection.max_open_connections)
            .await
            .ok_or_else(|| DatabaseError::Unreachable("connection gate closed".into()))?;
        let scrub = pg::Scrub(connection.secrets());
        match pg::connect(&connection.target()?, &scrub).await {
            Ok(client) => Ok((client, permit)),
            Err(e) if pg::is_auth_failure(&e) && connection.next_password.is_some() => {
                let mut rotated = connection.clone();
                rotated.password = rotated.next_password.take().unwrap_or_default();
                let client = pg::connect(&rotated.target()?, &scrub).await?;
                self.store_connection(name, &rotated).await?;
                tracing::info!(connection = name, "finished an interrupted root rotation");
                Ok((client, permit))
            }
            Err(e) => Err(e),
        }
    }

    /// `database/config/:name`: creates or updates a connection (fields not given keep their
    /// value on update). With `verify_connection` (the default) the write fails unless vaultd
    /// can log in with it.
    pub async fn write_connection(&self, name: &str, body: Map<String, Value>) -> Result<()> {
        let mut fields = Fields(body);
        let existing = self.connection(name).await?;
        let plugin = fields.string("plugin_name")?;
        match (&plugin, &existing) {
            (Some(p), _) if p == PLUGIN => {}
            (Some(p), _) => {
                return Err(invalid(format!(
                    "plugin_name {:?} is not supported: vaultd speaks only {PLUGIN}",
                    p.chars().take(64).collect::<String>()
                )));
            }
            (None, Some(_)) => {}
            (None, None) => return Err(invalid(format!("plugin_name is required ({PLUGIN})"))),
        }
        fields.string("plugin_version")?.map_or(Ok(()), |v| {
            if v.is_empty() {
                Ok(())
            } else {
                Err(invalid(
                    "plugin_version is not supported (the plugin is built in)",
                ))
            }
        })?;
        let verify = fields.boolean("verify_connection")?.unwrap_or(true);
        let mut connection = existing.unwrap_or(Connection {
            connection_url: String::new(),
            username: String::new(),
            password: Zeroizing::new(String::new()),
            next_password: None,
            allowed_roles: Vec::new(),
            verify_connection: true,
            root_rotation_statements: Vec::new(),
            max_open_connections: 4,
        });
        connection.verify_connection = verify;
        if let Some(url) = fields.string("connection_url")? {
            connection.connection_url = url;
        }
        if let Some(user) = fields.string("username")? {
            connection.username = user;
        }
        if let Some(password) = fields.string("password")? {
            connection.password = Zeroizing::new(password);
            connection.next_password = None;
        }
        if let Some(roles) = fields.list("allowed_roles", true)? {
            connection.allowed_roles = roles;
        }
        if let Some(statements) = fields.list("root_rotation_statements", false)? {
            check_statements("root_rotation_statements", &statements)?;
            connection.root_rotation_statements = statements;
        }
        if let Some(n) = fields.take("max_open_connections") {
            connection.max_open_connections = n
                .as_u64()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| invalid("max_open_connections must be a number from 1 to 64"))?
                as u32;
        }
        fields.finish()?;
        if connection.connection_url.is_empty() {
            return Err(invalid("connection_url is required"));
        }
        // Parse now so a bad URL fails the write, not the first credential.
        connection.target()?;
        if verify {
            let scrub = pg::Scrub(connection.secrets());
            let client = pg::bounded(pg::connect(&connection.target()?, &scrub))
                .await
                .map_err(|e| invalid(format!("verify_connection: {e}")))?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|_| invalid("verify_connection: the database did not answer SELECT 1"))?;
        }
        self.gates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.store_connection(name, &connection).await
    }

    /// What a read of `database/config/:name` shows: never the password.
    pub async fn read_connection(&self, name: &str) -> Result<Value> {
        let c = self
            .connection(name)
            .await?
            .ok_or_else(|| DatabaseError::Missing(name.to_owned()))?;
        Ok(json!({
            "plugin_name": PLUGIN,
            "plugin_version": "",
            "allowed_roles": c.allowed_roles,
            "verify_connection": c.verify_connection,
            "root_credentials_rotate_statements": c.root_rotation_statements,
            "password_policy": "",
            "connection_details": {
                "connection_url": c.connection_url,
                "username": c.username,
                "max_open_connections": c.max_open_connections,
            },
        }))
    }

    /// Deletes a connection; refused while leases on it are outstanding (they could no
    /// longer be revoked).
    pub async fn delete_connection(&self, name: &str) -> Result<()> {
        let outstanding = self.leases.count_for_database(name).await?;
        if outstanding > 0 {
            return Err(invalid(format!(
                "connection {name:?} has {outstanding} outstanding lease(s): revoke them first (sys/leases/revoke-prefix/database/creds/<role>)"
            )));
        }
        self.store
            .delete(Tree::Database, vec![config_key(name)])
            .await?;
        self.store.sync().await?;
        Ok(())
    }

    /// `database/rotate-root/:name`: a new random admin password, set with the rotation
    /// statements and stored. The new password is stored (as `next_password`) before
    /// PostgreSQL is told, so a crash between the two cannot lose it.
    pub async fn rotate_root(&self, name: &str) -> Result<()> {
        let unknown = || invalid(format!("unknown connection {name:?}"));
        let connection = self.connection(name).await?.ok_or_else(unknown)?;
        // Settle an earlier rotation whose outcome is unknown (see `admin_client`), and make
        // sure the stored password logs in before replacing it.
        drop(pg::bounded(self.admin_client(name, &connection)).await?);
        let mut connection = self.connection(name).await?.ok_or_else(unknown)?;
        let new_password = leases::random_password()?;
        connection.next_password = Some(new_password.clone());
        self.store_connection(name, &connection).await?;
        let statements = if connection.root_rotation_statements.is_empty() {
            vec![DEFAULT_ROOT_ROTATION.to_owned()]
        } else {
            connection.root_rotation_statements.clone()
        };
        let vars = pg::Vars {
            name: &connection.username,
            password: Some(&new_password),
            expiration: "",
            username: &connection.username,
        };
        let rendered: Vec<_> = statements.iter().map(|s| pg::render(s, &vars)).collect();
        let scrub = pg::Scrub(connection.secrets());
        let result = pg::bounded(async {
            let (mut client, _permit) = self.admin_client(name, &connection).await?;
            pg::run_in_transaction(&mut client, &rendered, &scrub).await
        })
        .await;
        match &result {
            Ok(()) => {
                connection.password = new_password;
                connection.next_password = None;
            }
            // Rolled back: the old password stands.
            Err(DatabaseError::Refused(_)) => connection.next_password = None,
            // Unknown outcome: keep both; the next connection settles it.
            Err(_) => return result,
        }
        self.store_connection(name, &connection).await?;
        result.map_err(|e| match e {
            DatabaseError::Refused(m) => invalid(format!("rotating the root password: {m}")),
            other => other,
        })
    }

    async fn store_connection(&self, name: &str, connection: &Connection) -> Result<()> {
        self.store
            .write(vec![(
                Tree::Database,
                config_key(name),
                Some(encode(connection)),
            )])
            .await?;
        self.store.sync().await?;
        Ok(())
    }

    /// `database/roles/:name`: creates or replaces a role, after checking it against its
    /// connection. Nothing is stored when anything is wrong.
    pub async fn write_role(&self, name: &str, body: Map<String, Value>) -> Result<()> {
        let mut fields = Fields(body);
        let db_name = fields
            .string("db_name")?
            .ok_or_else(|| invalid("db_name is required"))?;
        let creation = fields
            .list("creation_statements", false)?
            .ok_or_else(|| invalid("creation_statements is required"))?;
        let revocation = fields
            .list("revocation_statements", false)?
            .unwrap_or_default();
        let renew = fields.list("renew_statements", false)?.unwrap_or_default();
        if fields
            .list("rollback_statements", false)?
            .is_some_and(|r| !r.is_empty())
        {
            return Err(invalid(
                "rollback_statements are not supported: the creation statements run in one transaction, rolled back as a whole when one fails",
            ));
        }
        let default_ttl = fields.seconds("default_ttl")?.unwrap_or(0);
        let max_ttl = fields.seconds("max_ttl")?.unwrap_or(0);
        if let Some(kind) = fields.string("credential_type")?
            && kind != "password"
        {
            return Err(invalid("credential_type must be password"));
        }
        fields.finish()?;
        check_statements("creation_statements", &creation)?;
        if !creation.iter().any(|s| s.contains("{{name}}")) {
            return Err(invalid(
                "creation_statements must create the role {{name}}, e.g. CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
            ));
        }
        check_statements("revocation_statements", &revocation)?;
        check_statements("renew_statements", &renew)?;
        if !revocation.is_empty() && !revocation.iter().any(|s| s.contains("{{name}}")) {
            return Err(invalid("revocation_statements must drop the role {{name}}"));
        }
        if max_ttl > MAX_TTL || default_ttl > MAX_TTL {
            return Err(invalid(format!(
                "default_ttl and max_ttl may be at most {MAX_TTL} seconds (32 days)"
            )));
        }
        let effective_max = if max_ttl == 0 {
            DEFAULT_MAX_TTL
        } else {
            max_ttl
        };
        if default_ttl > effective_max {
            return Err(invalid(format!(
                "default_ttl ({default_ttl}s) is over max_ttl ({effective_max}s)"
            )));
        }
        let connection = self.connection(&db_name).await?.ok_or_else(|| {
            invalid(format!(
                "unknown db_name {db_name:?}: configure database/config/{db_name} first"
            ))
        })?;
        if !connection.allows(name) {
            return Err(invalid(format!(
                "role {name:?} is not in the allowed_roles of connection {db_name:?}"
            )));
        }
        let role = Role {
            db_name,
            creation_statements: creation,
            revocation_statements: revocation,
            renew_statements: renew,
            default_ttl,
            max_ttl,
        };
        self.store
            .write(vec![(Tree::Database, role_key(name), Some(encode(&role)))])
            .await?;
        self.store.sync().await?;
        Ok(())
    }

    pub async fn read_role(&self, name: &str) -> Result<Value> {
        let r = self
            .role(name)
            .await?
            .ok_or_else(|| DatabaseError::Missing(name.to_owned()))?;
        Ok(json!({
            "db_name": r.db_name,
            "creation_statements": r.creation_statements,
            "revocation_statements": r.revocation_statements,
            "renew_statements": r.renew_statements,
            "rollback_statements": [],
            "default_ttl": r.default_ttl,
            "max_ttl": r.max_ttl,
            "credential_type": "password",
        }))
    }

    /// Deletes a role. Its outstanding leases keep their own copy of the statements that
    /// drop their users, so they are still revoked.
    pub async fn delete_role(&self, name: &str) -> Result<()> {
        self.store
            .delete(Tree::Database, vec![role_key(name)])
            .await?;
        self.store.sync().await?;
        Ok(())
    }

    /// The lease engine.
    pub fn leases(&self) -> &leases::Leases {
        &self.leases
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_roles_match_exactly_by_prefix_or_all() {
        let mut c = Connection {
            connection_url: String::new(),
            username: String::new(),
            password: Zeroizing::new("pw".into()),
            next_password: None,
            allowed_roles: vec!["deploy".into(), "ci-*".into()],
            verify_connection: true,
            root_rotation_statements: vec![],
            max_open_connections: 4,
        };
        assert!(c.allows("deploy") && c.allows("ci-x") && !c.allows("deployx"));
        c.allowed_roles = vec!["*".into()];
        assert!(c.allows("anything"));
        assert!(!format!("{c:?}").contains("pw\""));
    }

    #[test]
    fn statements_with_unknown_placeholders_are_refused() {
        assert!(check_statements("s", &["CREATE ROLE \"{{name}}\"".into()]).is_ok());
        assert!(check_statements("s", &["{{nmae}}".into()]).is_err());
        assert!(check_statements("s", &["{{name".into()]).is_err());
    }

    #[test]
    fn fields_name_the_unknown_one() {
        let mut f = Fields(serde_json::from_str(r#"{"db_name":"x","bogus":1}"#).expect("json"));
        assert_eq!(f.string("db_name").expect("string").as_deref(), Some("x"));
        let err = f.finish().expect_err("unknown");
        assert!(err.to_string().contains("bogus"));
        let mut f = Fields(serde_json::from_str(r#"{"a":"x, y"}"#).expect("json"));
        assert_eq!(
            f.list("a", true).expect("list"),
            Some(vec!["x".into(), "y".into()])
        );
    }
}

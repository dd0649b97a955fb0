//! [`Backend`] on PostgreSQL, so several vaultd replicas can share one replicated database
//! (self-hosted with streaming replication, managed, or wire-compatible). Records arrive
//! already encrypted by the sealed store: the database holds ciphertext and key names, as the
//! sled file does.
//!
//! One table, `vaultd_records (tree smallint, key bytea, value bytea, PRIMARY KEY (tree, key))`,
//! created or migrated at start under the schema version in `vaultd_schema`. `bytea` compares
//! bytewise, so a prefix scan is a range on the primary key. Every batch is one transaction;
//! a guarded batch ([`Backend::apply_if`]) runs `SERIALIZABLE` and is retried inside on a
//! serialization failure, so only a guard that really failed reports `false`. A commit is
//! durable when it returns (`synchronous_commit`, the server's own setting), so
//! [`Backend::sync`] has nothing left to do.
//!
//! Connections come from a small pool (deadpool); a database that is down makes operations
//! fail with [`StoreError::Unavailable`] within the connect timeout, and the pool reconnects
//! by itself when it returns. Nothing here keeps session state between statements (no
//! advisory locks over the pool).

use super::{Backend, Guard, Record, StoreError, Tree, Write};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls_pki_types::pem::PemObject;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use zeroize::Zeroizing;

/// The schema this build writes. A database stamped with a newer one is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// How often a guarded batch is retried after a serialization failure before giving up.
const SERIALIZATION_RETRIES: usize = 32;

/// How to reach the database.
pub struct PgOptions {
    /// A libpq-style URL: `postgresql://user@host1,host2:5432/db?sslmode=verify-full&…`.
    /// It must not hold a password (that would put it in argv or a config file).
    pub url: String,
    pub password: Option<Zeroizing<String>>,
    /// PEM roots to verify the server certificate; the web PKI roots when `None`.
    pub ca_file: Option<std::path::PathBuf>,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// Why a storage URL or its TLS setup was refused at start.
#[derive(Debug, thiserror::Error)]
pub enum PgConfigError {
    #[error("storage_url is not a valid PostgreSQL URL: {0}")]
    Url(String),
    #[error(
        "storage_url must not contain a password: use storage_password_file or VAULTD_STORAGE_PASSWORD"
    )]
    PasswordInUrl,
    #[error("sslmode={0} is not supported: use disable, require, verify-ca or verify-full")]
    SslMode(String),
    #[error("storage_ca_file {path}: {message}")]
    CaFile { path: String, message: String },
}

pub struct PostgresBackend {
    pool: Pool,
    /// The schema check and migration, done once the database first answers.
    schema: OnceCell<()>,
    statement_timeout: Duration,
    /// What the `LISTEN` connection needs to connect on its own.
    listen: (
        tokio_postgres::Config,
        Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ),
    /// Bumped on every `NOTIFY` of a config change and on every (re)connect of the listener.
    config_changes: tokio::sync::watch::Sender<u64>,
}

/// The channel a config change is announced on (in the transaction that makes it, so the
/// notification is delivered exactly when the change commits).
const CONFIG_CHANNEL: &str = "vaultd_config";

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresBackend")
    }
}

/// Splits `sslmode` off the URL (tokio-postgres knows only disable/prefer/require) and says
/// whether to use TLS. Every TLS mode is enforced (`SslMode::Require`: no plain-text fallback)
/// and verifies the chain and the host name: stricter than libpq's `require`, never weaker.
pub(crate) fn split_sslmode(url: &str) -> Result<(String, bool), PgConfigError> {
    let Some((base, query)) = url.split_once('?') else {
        // libpq's default is `prefer`, which may fall back to plain text: we require TLS.
        return Ok((url.to_owned(), true));
    };
    let mut tls = true;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", mode)) => {
                tls = match mode {
                    "disable" => false,
                    "require" | "verify-ca" | "verify-full" => true,
                    other => return Err(PgConfigError::SslMode(other.to_owned())),
                }
            }
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rebuilt, tls))
}

pub(crate) fn tls_config(ca_file: Option<&std::path::Path>) -> Result<ClientConfig, PgConfigError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let err = |message: String| PgConfigError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            let mut found = 0;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| err(e.to_string()))?;
                roots.add(cert).map_err(|e| err(e.to_string()))?;
                found += 1;
            }
            if found == 0 {
                return Err(err("no PEM certificate in the file".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| PgConfigError::CaFile {
            path: "(TLS setup)".into(),
            message: e.to_string(),
        })
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A database error: the server's message (never a value: statements carry only parameters,
/// and parameters are ciphertext or key names).
fn db_error(e: tokio_postgres::Error) -> StoreError {
    if e.is_closed() || e.as_db_error().is_none() {
        return unavailable(e);
    }
    let db = e.as_db_error();
    let message = db.map(|d| d.message().to_owned()).unwrap_or_default();
    match e.code() {
        Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => StoreError::Backend(format!(
            "the database role lacks a privilege ({message}): grant it ownership of the database, or CREATE on it"
        )),
        Some(code)
            if *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::READ_ONLY_SQL_TRANSACTION =>
        {
            unavailable(message)
        }
        _ => StoreError::Backend(format!("PostgreSQL: {message}")),
    }
}

/// A failed connection attempt: the network or a server that is not up is an outage (retry
/// later); a refusal by the server (password, unknown database) or a setting the client
/// rejects (no password given) is a configuration error.
fn connect_error(e: tokio_postgres::Error) -> StoreError {
    if e.as_db_error().is_some() {
        return db_error(e);
    }
    // A certificate the roots do not vouch for is a configuration error, not an outage.
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<tokio_rustls::rustls::Error>() {
            return StoreError::Backend(format!(
                "PostgreSQL TLS: {tls} (check storage_ca_file and the host name in storage_url)"
            ));
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
        {
            return StoreError::Backend(format!(
                "PostgreSQL TLS: {tls} (check storage_ca_file and the host name in storage_url)"
            ));
        }
        source = cause.source();
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if io || e.is_closed() || e.to_string().contains("timeout") {
        unavailable(e)
    } else {
        // tokio-postgres puts the specifics ("password missing") in the source.
        match std::error::Error::source(&e) {
            Some(cause) => StoreError::Backend(format!("PostgreSQL: {e}: {cause}")),
            None => StoreError::Backend(format!("PostgreSQL: {e}")),
        }
    }
}

fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// One `LISTEN` session: bumps `changes` once connected (a reconnect may have missed
/// notifications) and on every notification, until the connection ends.
async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    changes: &tokio::sync::watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CONFIG_CHANNEL}"))
        .await?;
    changes.send_modify(|n| *n += 1);
    while rx.recv().await.is_some() {
        changes.send_modify(|n| *n += 1);
    }
    driver.abort();
    Ok(())
}

fn tree_id(tree: Tree) -> i16 {
    i16::from(tree.tag())
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

const UPSERT: &str = "INSERT INTO vaultd_records (tree, key, value) VALUES ($1, $2, $3) \
                      ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM vaultd_records WHERE tree = $1 AND key = $2";
const SELECT: &str = "SELECT value FROM vaultd_records WHERE tree = $1 AND key = $2";
/// A guard's read: the row is locked until the transaction ends, so a writer outside the
/// serializable transaction (a plain batch) waits instead of slipping in between.
const SELECT_FOR_UPDATE: &str =
    "SELECT value FROM vaultd_records WHERE tree = $1 AND key = $2 FOR UPDATE";

impl PostgresBackend {
    /// Builds the pool. Connects lazily: a database that is not up yet is not an error here
    /// (see [`PostgresBackend::check`]).
    pub fn new(options: &PgOptions) -> Result<Self, PgConfigError> {
        let (url, tls) = split_sslmode(&options.url)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgConfigError::Url(e.to_string()))?;
        if config.get_password().is_some() {
            return Err(PgConfigError::PasswordInUrl);
        }
        // Whatever the string said (a key=value string keeps its own `sslmode`): TLS is
        // required, never "preferred" — `prefer` would carry on in plain text (and send the
        // password) if something on the path answered that the server has no TLS.
        if url.contains("sslmode=prefer") || url.contains("sslmode=allow") {
            return Err(PgConfigError::SslMode("prefer".into()));
        }
        config.ssl_mode(if tls {
            tokio_postgres::config::SslMode::Require
        } else {
            tokio_postgres::config::SslMode::Disable
        });
        if let Some(password) = &options.password {
            config.password(password.as_bytes());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        config.application_name("vaultd");
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let tls = match tls {
            true => Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                options.ca_file.as_deref(),
            )?)),
            false => None,
        };
        let listen = (config.clone(), tls.clone());
        let manager = match tls {
            Some(tls) => Manager::from_config(config, tls, manager_config),
            None => Manager::from_config(config, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| PgConfigError::Url(e.to_string()))?;
        Ok(Self {
            pool,
            schema: OnceCell::new(),
            statement_timeout: options.statement_timeout,
            listen,
            config_changes: tokio::sync::watch::channel(0).0,
        })
    }

    /// Keeps one extra connection that `LISTEN`s for config changes made by any replica and
    /// bumps [`Backend::config_changes`]; reconnects (and bumps, so caches reload in full)
    /// whenever it drops. Call once, inside the runtime.
    pub fn spawn_listener(&self) {
        let (config, tls) = self.listen.clone();
        let changes = self.config_changes.clone();
        tokio::spawn(async move {
            loop {
                let result = match &tls {
                    Some(tls) => listen_once(&config, tls.clone(), &changes).await,
                    None => listen_once(&config, NoTls, &changes).await,
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "config listener disconnected; reconnecting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Connects and checks or creates the schema now. `Err(Unavailable)` means the database
    /// could not be reached (the caller may go on and retry later); any other error is a
    /// configuration problem (password, grants, a newer schema) to report at start.
    pub async fn check(&self) -> Result<(), StoreError> {
        self.ready().await.map(|_| ())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => connect_error(e),
            other => unavailable(other),
        })
    }

    /// A pooled connection, after the schema is known to be in place.
    async fn ready(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.schema.get_or_try_init(|| self.migrate()).await?;
        self.client().await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Idempotent DDL, under a transaction-scoped advisory lock so replicas starting together
        // do not race (released at commit: nothing outlives the transaction).
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        tx.execute("SELECT pg_advisory_xact_lock(7261726964)", &[])
            .await
            .map_err(db_error)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS vaultd_schema (version integer NOT NULL);
             CREATE TABLE IF NOT EXISTS vaultd_records (
                 tree smallint NOT NULL,
                 key bytea NOT NULL,
                 value bytea NOT NULL,
                 PRIMARY KEY (tree, key)
             );",
        )
        .await
        .map_err(db_error)?;
        let row = tx
            .query_opt("SELECT max(version) FROM vaultd_schema", &[])
            .await
            .map_err(db_error)?;
        let version: Option<i32> = row.and_then(|r| r.get(0));
        match version {
            None => {
                tx.execute(
                    "INSERT INTO vaultd_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .await
                .map_err(db_error)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Backend(format!(
                    "the database holds schema version {v}, written by a newer vaultd (this one writes {SCHEMA_VERSION}); upgrade vaultd"
                )));
            }
            Some(_) => {}
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn set_timeout(&self, tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
        let millis = self.statement_timeout.as_millis().max(1);
        tx.batch_execute(&format!("SET LOCAL statement_timeout = {millis}"))
            .await
            .map_err(db_error)
    }

    async fn write_all(
        tx: &deadpool_postgres::Transaction<'_>,
        writes: &[Write],
    ) -> Result<(), tokio_postgres::Error> {
        let upsert = tx.prepare_cached(UPSERT).await?;
        let delete = tx.prepare_cached(DELETE).await?;
        for w in writes {
            let tree = tree_id(w.tree);
            match &w.value {
                Some(v) => tx.execute(&upsert, &[&tree, &w.key, v]).await?,
                None => tx.execute(&delete, &[&tree, &w.key]).await?,
            };
        }
        // Delivered to every listening replica when (and only if) this transaction commits.
        if writes.iter().any(|w| w.tree == Tree::Config) {
            tx.batch_execute(&format!("NOTIFY {CONFIG_CHANNEL}"))
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for PostgresBackend {
    async fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.ready().await?;
        let statement = client.prepare_cached(SELECT).await.map_err(db_error)?;
        let row = client
            .query_opt(&statement, &[&tree_id(tree), &key])
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Record>, StoreError> {
        let client = self.ready().await?;
        let rows = match prefix_end(prefix) {
            Some(end) => {
                client
                    .query(
                        "SELECT key, value FROM vaultd_records \
                     WHERE tree = $1 AND key >= $2 AND key < $3 ORDER BY key",
                        &[&tree_id(tree), &prefix, &end],
                    )
                    .await
            }
            None => {
                client
                    .query(
                        "SELECT key, value FROM vaultd_records \
                     WHERE tree = $1 AND key >= $2 ORDER BY key",
                        &[&tree_id(tree), &prefix],
                    )
                    .await
            }
        }
        .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        // The common case, a create-once record (a spent jti), is one statement.
        if let (None, Some(value)) = (expected, &new) {
            let client = self.ready().await?;
            let inserted = client
                .execute(
                    "INSERT INTO vaultd_records (tree, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (tree, key) DO NOTHING",
                    &[&tree_id(tree), &key, value],
                )
                .await
                .map_err(db_error)?;
            return Ok(inserted == 1);
        }
        let guard = Guard {
            tree,
            key: key.to_vec(),
            expected: expected.map(<[u8]>::to_vec),
        };
        let write = Write {
            tree,
            key: key.to_vec(),
            value: new,
        };
        self.apply_if(vec![guard], vec![write]).await
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut client = self.ready().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        self.set_timeout(&tx).await?;
        Self::write_all(&tx, &writes).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn apply_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<bool, StoreError> {
        let mut client = self.ready().await?;
        for _ in 0..SERIALIZATION_RETRIES {
            let attempt = async {
                let tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .start()
                    .await?;
                let millis = self.statement_timeout.as_millis().max(1);
                tx.batch_execute(&format!("SET LOCAL statement_timeout = {millis}"))
                    .await?;
                let select = tx.prepare_cached(SELECT_FOR_UPDATE).await?;
                for guard in &guards {
                    let row = tx
                        .query_opt(&select, &[&tree_id(guard.tree), &guard.key])
                        .await?;
                    let current: Option<Vec<u8>> = row.map(|r| r.get(0));
                    if current != guard.expected {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                Self::write_all(&tx, &writes).await?;
                tx.commit().await?;
                Ok::<bool, tokio_postgres::Error>(true)
            };
            match attempt.await {
                Ok(applied) => return Ok(applied),
                Err(e) if is_retryable(&e) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                Err(e) => return Err(db_error(e)),
            }
        }
        Err(StoreError::Unavailable(
            "guarded write kept conflicting with concurrent writers".into(),
        ))
    }

    fn config_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.config_changes.subscribe())
    }

    async fn sync(&self) -> Result<(), StoreError> {
        // Each batch was committed; with synchronous_commit (PostgreSQL's default) a commit
        // that returned is durable, on the standbys too when synchronous replication is set.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_string_past_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn sslmode_is_split_off_and_every_tls_mode_verifies() {
        let (url, tls) = split_sslmode(
            "postgresql://vaultd@db1,db2/vaultd?sslmode=verify-full&target_session_attrs=read-write",
        )
        .expect("valid");
        assert!(tls);
        assert_eq!(
            url,
            "postgresql://vaultd@db1,db2/vaultd?target_session_attrs=read-write"
        );
        let (_, tls) = split_sslmode("postgresql://h/db?sslmode=disable").expect("valid");
        assert!(!tls);
        assert!(split_sslmode("postgresql://h/db").expect("valid").1);
        assert!(matches!(
            split_sslmode("postgresql://h/db?sslmode=prefer"),
            Err(PgConfigError::SslMode(_))
        ));
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_debug_hides_the_password() {
        let options = PgOptions {
            url: "postgresql://vaultd:hunter2@localhost/db?sslmode=disable".into(),
            password: None,
            ca_file: None,
            pool_size: 2,
            connect_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            PostgresBackend::new(&options),
            Err(PgConfigError::PasswordInUrl)
        ));
        let options = PgOptions {
            password: Some(Zeroizing::new("s3cret-db-password".into())),
            ..options
        };
        assert!(!format!("{options:?}").contains("s3cret-db-password"));
    }
}

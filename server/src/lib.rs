//! `vaultd`: a secrets broker for CI/CD pipelines.
//!
//! The modules by layer, bottom up. Each layer uses only the ones below it; HTTP appears only
//! in the top two.
//!
//! 1. **Crypto and storage**
//!    - [`crypto`]: AES-256-GCM, HMAC, Argon2id and the secret key types.
//!    - [`store`]: the narrow async [`store::Backend`] (sled embedded, PostgreSQL for
//!      replicas, memory for tests), the key hierarchy in [`store::keyring`] (slots, init,
//!      unseal, rotate), and [`store::sealed::SealedStore`], which encrypts every record and
//!      offers guarded read-modify-write.
//!    - `clock`: Unix seconds and Vault's RFC 3339 timestamps.
//! 2. **Engines** (no HTTP): `kv` ([`Kv`], KV v2), `tokens` ([`TokenStore`], the token tree and
//!    [`PresentedToken`]), `policy_store` ([`PolicyStore`], the document in force), [`oidc`]
//!    (JWKS and JWT verification), `login` (the JWT login flow, phase by phase), `bootstrap`
//!    (init with the root token), `database` ([`Database`]: dynamic PostgreSQL users and
//!    their leases).
//! 3. **Request plumbing**: `authz` (the "may these policies do this here?" seam), `audit`
//!    ([`AuditLog`]: one line per request, fail closed), `ratelimit` ([`RateLimiter`]),
//!    `metrics` ([`Metrics`], Prometheus), `error` ([`ApiError`]: the one place errors become
//!    responses), [`state`] ([`App`], what every request shares).
//! 4. **HTTP and process**: [`http`] (the Vault-compatible API: thin handlers), [`server`] (the
//!    accept loop: TLS, limits, graceful shutdown), [`config`], [`dev`] (`vaultd dev`), and the
//!    start-up functions here ([`open_app`], [`spawn_sweeper`], [`migrate`], [`StartError`]).
//!
//! `docs/architecture.md` follows one login and one KV read through these modules.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod audit;
mod authz;
mod batching;
mod bootstrap;
mod clock;
pub mod config;
pub mod crypto;
mod database;
pub mod dev;
mod error;
pub mod http;
mod identity;
mod kv;
mod login;
mod metrics;
pub mod oidc;
mod policy_store;
mod ratelimit;
pub mod server;
pub mod state;
pub mod store;
mod tokens;

pub use audit::AuditLog;
pub use authz::{Authorizer, Capability};
pub use database::{Database, DatabaseError};
pub use error::ApiError;
pub use identity::{
    Identity, IdentityError, IdentityRole, KeyAlgorithm, KeyParams, Minted, NamedKey, RoleParams,
};
pub use kv::{Kv, KvError, ReadOutcome};
pub use login::{LoginDenied, LoginError};
pub use metrics::Metrics;
pub use policy_store::{PolicySnapshot, PolicyStore, PolicyStoreError};
pub use ratelimit::RateLimiter;
pub use tokens::{PresentedToken, PresentedTokenError, TokenRecord, TokenStore};

use state::{App, Limits, SharedApp};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why `vaultd` could not start: everything that can stop the process before it serves.
/// `main` prints it as one line (`vaultd: <message>`) and exits non-zero. Messages name the
/// file, address or flag at fault and never hold key material or tokens.
///
/// Error types by layer, bottom up (the engines above the store are mapped in `error`):
/// - [`crypto::CryptoError`]: a crypto primitive (randomness, AEAD, Argon2id).
/// - [`store::StoreError`]: a storage engine or record encryption;
///   [`store::sealed::UnsealError`]: an unseal attempt.
/// - [`config::ConfigError`]: the config file, `VAULTD_*` variables and flags.
/// - [`oidc::jwks::FetchError`]: fetching or parsing an issuer's key set;
///   [`oidc::jwks::JwksError`]: finding a token's key in it.
/// - [`error::ApiError`]: the HTTP layer only, and the one place errors become responses.
/// - `StartError`: start-up (`main`, [`open_app`], [`dev`], [`server::tls_acceptor`]), never
///   an HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Core dumps could not be disabled or the process could not be made non-dumpable.
    #[error("{action}: {source}")]
    Harden {
        action: &'static str,
        source: nix::errno::Errno,
    },
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The data dir cannot be created or is readable by others.
    #[error("data dir {path}: {message}")]
    DataDir { path: String, message: String },
    /// The storage engine would not open.
    #[error("opening the store in {path}: {source}")]
    Store {
        path: String,
        source: store::StoreError,
    },
    /// The PostgreSQL settings are unusable (URL, TLS roots).
    #[error("{0}")]
    StorageConfig(#[from] store::postgres::PgConfigError),
    /// The unseal key file is unreadable or not a key.
    #[error("unseal_key_file {path}: {message}")]
    UnsealKeyFile { path: String, message: String },
    /// `vaultd operator migrate` failed.
    #[error("migrate: {0}")]
    Migrate(String),
    /// The audit log cannot be opened for appending.
    #[error("opening audit log {path}: {source}")]
    Audit {
        path: String,
        source: std::io::Error,
    },
    /// The TLS certificate file cannot be read.
    #[error("reading TLS certificate {path}: {message}")]
    TlsCertRead { path: String, message: String },
    /// The TLS certificate file holds a malformed PEM block.
    #[error("parsing TLS certificate {path}: {message}")]
    TlsCertParse { path: String, message: String },
    /// The TLS certificate file holds no certificate.
    #[error("no certificate found in {path}")]
    TlsNoCert { path: String },
    /// The TLS key file cannot be read or holds no private key.
    #[error("reading TLS key {path}: {message}")]
    TlsKey { path: String, message: String },
    /// rustls refused its own protocol defaults (a build problem, not a user one).
    #[error("TLS setup: {0}")]
    TlsSetup(tokio_rustls::rustls::Error),
    /// The certificate and key are not a pair, or the key type is unsupported.
    #[error("TLS certificate and key do not match: {0}")]
    TlsMismatch(tokio_rustls::rustls::Error),
    /// The listen address cannot be bound; `hint` suggests what to do (may be empty).
    #[error("cannot listen on {addr}: {source}{hint}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    /// The bound socket has no local address.
    #[error("reading the listening address: {0}")]
    LocalAddr(std::io::Error),
    /// No random source for a temp dir name.
    #[error("choosing a temp data dir: {0}")]
    TempDir(crypto::CryptoError),
    /// `--root-token` looks like a minted token but its checksum is wrong.
    #[error(
        "--root-token must not start with {prefix} unless it is a real token (the checksum would fail)"
    )]
    RootTokenPrefix { prefix: &'static str },
    /// `--root-token` was given for a data dir that already has one.
    #[error("--root-token applies only to a new data dir; {path} is already initialised")]
    RootTokenOnExistingDir { path: String },
    /// Reading the store's state or initialising it failed.
    #[error("initialising the store: {0}")]
    Init(store::StoreError),
    /// Another process initialised the data dir at the same moment.
    #[error("store was initialised concurrently")]
    InitRace,
    /// A dev file (unseal key, root token) cannot be written or read.
    #[error("{action} {path}: {source}")]
    DevFile {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// The data dir was initialised by something other than `vaultd dev`.
    #[error(
        "{data_dir} holds data not created by `vaultd dev` ({key_file}: {source}); use `vaultd server` for it"
    )]
    NotDevDataDir {
        data_dir: String,
        key_file: String,
        source: std::io::Error,
    },
    /// The dev unseal key file does not hold a 32-byte base64 key.
    #[error("dev unseal key file is corrupt")]
    DevKeyCorrupt,
    /// The dev unseal key did not unseal the store.
    #[error("dev unseal failed: {0}")]
    DevUnseal(store::sealed::UnsealError),
    /// The dev OIDC issuer could not make its key.
    #[error("{0}")]
    DevIssuer(String),
    /// The dev OIDC issuer was started twice.
    #[error("dev issuer already started")]
    DevIssuerStarted,
    /// The policy directory cannot be listed.
    #[error("reading {path}: {source}")]
    PolicyDir {
        path: String,
        source: std::io::Error,
    },
    /// A policy document cannot be read or does not parse.
    #[error("{path}: {message}")]
    PolicyFile { path: String, message: String },
    /// The built-in dev document does not parse (a bug).
    #[error("dev document: {0}")]
    DevDocument(policies::PolicyError),
    /// The policy documents do not apply together.
    #[error("loading policies: {0}")]
    LoadPolicies(policy_store::PolicyStoreError),
}

/// Creates `dir` 0700, or checks that an existing one is not readable by group or others.
pub fn prepare_data_dir(dir: &Path) -> Result<(), StartError> {
    let err = |message: String| StartError::DataDir {
        path: dir.display().to_string(),
        message,
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| err(e.to_string()))?;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(|e| err(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "is accessible by group or others (mode {:o}); run: chmod 700 {}",
                mode & 0o777,
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Restricts every file under `dir` to its owner (sled creates them with the process umask).
pub fn restrict_files(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let mode = if path.is_dir() { 0o700 } else { 0o600 };
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
            if path.is_dir() {
                restrict_files(&path);
            }
        }
    }
}

/// Opens the storage engine `storage` names. A PostgreSQL database that cannot be reached yet
/// is not an error (vaultd starts, answers 503 and retries); one that refuses us (password,
/// grants, a schema from a newer vaultd) is.
pub async fn open_backend(
    storage: &config::Storage,
) -> Result<Arc<dyn store::Backend>, StartError> {
    match storage {
        config::Storage::Sled(data_dir) => {
            prepare_data_dir(data_dir)?;
            let backend =
                store::sled_backend::SledBackend::open(&data_dir.join("db")).map_err(|source| {
                    StartError::Store {
                        path: data_dir.display().to_string(),
                        source,
                    }
                })?;
            restrict_files(data_dir);
            Ok(Arc::new(backend))
        }
        config::Storage::Postgres(options) => {
            let backend = store::postgres::PostgresBackend::new(options)?;
            backend.spawn_listener();
            match backend.check().await {
                Ok(()) => {}
                Err(store::StoreError::Unavailable(cause)) => {
                    tracing::warn!(%cause, "database not reachable yet; serving 503 and retrying");
                }
                Err(source) => {
                    return Err(StartError::Store {
                        path: "the PostgreSQL database".into(),
                        source,
                    });
                }
            }
            Ok(Arc::new(backend))
        }
    }
}

/// Opens the store and builds the shared state (sealed until unsealed).
pub async fn open_app(
    storage: &config::Storage,
    audit_log: Option<&Path>,
    limits: Limits,
    dev: bool,
) -> Result<SharedApp, StartError> {
    let backend = open_backend(storage).await?;
    let sealed = store::sealed::SealedStore::new(backend);
    let audit = match audit_log {
        Some(p) => audit::AuditLog::open(p).map_err(|source| StartError::Audit {
            path: p.display().to_string(),
            source,
        })?,
        None => audit::AuditLog::disabled(),
    };
    let app = App::new(sealed, audit, limits, dev);
    if matches!(storage, config::Storage::Sled(_)) {
        // The sled file is locked by this process: nobody else can be minting.
        app.database.set_exclusive();
    }
    Ok(Arc::new(app))
}

/// Copies every record, still encrypted, from `from` to `to`, which must be empty; returns
/// how many. Keys and tokens move with the records: the same unseal key opens the target.
pub async fn migrate(from: &config::Storage, to: &config::Storage) -> Result<usize, StartError> {
    let source = open_backend(from).await?;
    let target = open_backend(to).await?;
    let failed = |e: store::StoreError| StartError::Migrate(e.to_string());
    for tree in store::Tree::ALL {
        if !target
            .scan_prefix(tree, b"")
            .await
            .map_err(failed)?
            .is_empty()
        {
            return Err(StartError::Migrate(format!(
                "the target store is not empty (tree {}): refusing to mix two stores",
                tree.name()
            )));
        }
    }
    let mut copied = 0;
    // `sys` (the init marker and the keyring) last: a copy that fails half-way leaves a target
    // that does not claim to be an initialised store.
    let order = store::Tree::ALL
        .into_iter()
        .filter(|t| *t != store::Tree::Sys)
        .chain([store::Tree::Sys]);
    for tree in order {
        let records = source.scan_prefix(tree, b"").await.map_err(failed)?;
        for chunk in records.chunks(500) {
            let writes = chunk
                .iter()
                .map(|(key, value)| store::Write {
                    tree,
                    key: key.clone(),
                    value: Some(value.clone()),
                })
                .collect();
            target.apply(writes).await.map_err(failed)?;
            copied += chunk.len();
        }
    }
    target.sync().await.map_err(failed)?;
    Ok(copied)
}

/// Reads the unseal key from `path` (hex or base64, owner-only file).
pub fn read_unseal_key_file(path: &Path) -> Result<crypto::SecretKey, StartError> {
    let err = |message: String| StartError::UnsealKeyFile {
        path: path.display().to_string(),
        message,
    };
    let text =
        config::read_private_file("unseal_key_file", path).map_err(|e| err(e.to_string()))?;
    http::sys::parse_unseal_key(text.trim())
        .ok_or_else(|| err("does not hold a 32-byte key in hex or base64".into()))
}

/// Unseals with `key` as soon as the store is initialised and reachable: at start, or once
/// another replica has initialised the shared store, or once the database is back. Stops after
/// the first unseal, so an operator's `sys/seal` is not undone.
pub fn spawn_auto_unseal(app: SharedApp, key: crypto::SecretKey) {
    tokio::spawn(async move {
        loop {
            if !app.store.is_sealed() {
                return;
            }
            match app.store.is_initialized().await {
                Ok(true) => {
                    match app
                        .store
                        .unseal(store::sealed::UnsealCredential::Key(key.duplicate()))
                        .await
                    {
                        Ok(()) => {
                            tracing::info!("unsealed from unseal_key_file");
                            return;
                        }
                        Err(store::sealed::UnsealError::WrongKey) => {
                            tracing::error!("unseal_key_file holds the wrong key; not retrying");
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "auto-unseal failed; retrying"),
                    }
                }
                Ok(false) => tracing::debug!("store not initialised yet; waiting to unseal"),
                Err(e) => tracing::warn!(error = %e, "store unreachable; waiting to unseal"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Background upkeep: removes expired tokens once a minute while unsealed, and ends leases
/// (expired, abandoned, or whose revocation is due for a retry) every few seconds.
pub fn spawn_sweeper(app: SharedApp) {
    database::leases::spawn_sweeper(app.database.clone(), app.store.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if app.store.is_sealed() {
                continue;
            }
            match app.tokens.sweep_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "swept expired tokens"),
                Err(e) => tracing::warn!(error = %e, "token sweep failed"),
            }
            if let Err(e) = login::sweep_jti(&app).await {
                tracing::warn!(error = %e, "jti sweep failed");
            }
        }
    });
}

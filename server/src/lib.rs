//! `vaultd`: a secrets broker for CI/CD pipelines.
//!
//! Layers, bottom up:
//! - [`crypto`]: AES-256-GCM, HMAC, Argon2id and secret key types.
//! - [`store`]: the narrow [`store::Backend`] interface (sled today) and
//!   [`store::sealed::SealedStore`], which owns the key hierarchy and encrypts every record.
//! - [`kv`] and [`tokens`]: the KV v2 engine and the token store, on the sealed store.
//! - [`authz`]: the seam where a policy engine answers "may this token do this here?".
//! - [`http`]: the Vault-compatible API, thin handlers over the layers above; [`error`] is
//!   the one place errors become responses; [`audit`] writes one line per request.
//! - [`server`]: the accept loop (TLS, limits, graceful shutdown); [`config`] and [`dev`]
//!   prepare what `main` hands it.

#![forbid(unsafe_code)]

pub mod audit;
pub mod authz;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dev;
pub mod error;
pub mod http;
pub mod kv;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod policy_store;
pub mod ratelimit;
pub mod server;
pub mod state;
pub mod store;
pub mod tokens;

use state::{App, Limits, SharedApp};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data dir {path}: {message}")]
    DataDir { path: String, message: String },
    #[error("opening the store in {path}: {source}")]
    Store {
        path: String,
        source: store::StoreError,
    },
    #[error("opening audit log {path}: {source}")]
    Audit {
        path: String,
        source: std::io::Error,
    },
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

/// Opens the store under `data_dir` and builds the shared state (sealed until unsealed).
pub fn open_app(
    data_dir: &Path,
    audit_log: Option<&Path>,
    limits: Limits,
    dev: bool,
) -> Result<SharedApp, StartError> {
    prepare_data_dir(data_dir)?;
    let backend =
        store::sled_backend::SledBackend::open(&data_dir.join("db")).map_err(|source| {
            StartError::Store {
                path: data_dir.display().to_string(),
                source,
            }
        })?;
    restrict_files(data_dir);
    let sealed = store::sealed::SealedStore::new(Arc::new(backend));
    let audit = match audit_log {
        Some(p) => audit::AuditLog::open(p).map_err(|source| StartError::Audit {
            path: p.display().to_string(),
            source,
        })?,
        None => audit::AuditLog::disabled(),
    };
    Ok(Arc::new(App::new(sealed, audit, limits, dev)))
}

/// Background upkeep: removes expired tokens once a minute while unsealed.
pub fn spawn_sweeper(app: SharedApp) {
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
            if let Err(e) = login::sweep_jti(&app) {
                tracing::warn!(error = %e, "jti sweep failed");
            }
        }
    });
}

//! Shared server state handed to every request.

use crate::audit::AuditLog;
use crate::authz::SharedAuthorizer;
use crate::kv::Kv;
use crate::store::sealed::SealedStore;
use crate::tokens::TokenStore;
use std::sync::Arc;
use std::time::Duration;

/// Request limits, configurable in `vaultd.toml`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

#[derive(Debug)]
pub struct App {
    pub store: SealedStore,
    pub kv: Kv,
    pub tokens: TokenStore,
    pub authz: SharedAuthorizer,
    pub audit: AuditLog,
    pub limits: Limits,
}

pub type SharedApp = Arc<App>;

impl App {
    pub fn new(
        store: SealedStore,
        authz: SharedAuthorizer,
        audit: AuditLog,
        limits: Limits,
    ) -> Self {
        Self {
            kv: Kv::new(store.clone()),
            tokens: TokenStore::new(store.clone()),
            store,
            authz,
            audit,
            limits,
        }
    }
}

impl std::fmt::Debug for dyn crate::authz::Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer")
    }
}

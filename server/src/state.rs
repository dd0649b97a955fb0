//! Shared server state handed to every request.

use crate::audit::AuditLog;
use crate::authz::SharedAuthorizer;
use crate::kv::Kv;
use crate::metrics::Metrics;
use crate::oidc::dev_issuer::DevIssuer;
use crate::oidc::jwks::JwksCache;
use crate::policy_store::{PolicyAuthorizer, PolicyStore};
use crate::ratelimit::RateLimiter;
use crate::store::sealed::SealedStore;
use crate::tokens::TokenStore;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Request limits, configurable in `vaultd.toml`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// Logins per second per client address (0 = unlimited), and the burst allowed.
    pub login_rate_per_second: u32,
    pub login_burst: u32,
    /// Minimum time between two key-set fetches for one issuer.
    pub jwks_refresh_cooldown: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            login_rate_per_second: 50,
            login_burst: 100,
            jwks_refresh_cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
pub struct App {
    pub store: SealedStore,
    pub kv: Kv,
    pub tokens: TokenStore,
    pub identity: crate::identity::Identity,
    pub database: crate::database::Database,
    pub policies: Arc<PolicyStore>,
    pub authz: SharedAuthorizer,
    pub audit: AuditLog,
    pub limits: Limits,
    pub login_limiter: RateLimiter,
    /// Set only by `vaultd dev`, once it knows its address.
    pub dev_issuer: OnceLock<DevIssuer>,
    /// Where clients reach this vaultd (config `api_addr`, else the listen address), once
    /// known: the default issuer of identity tokens.
    pub api_addr: OnceLock<String>,
    pub metrics: Arc<Metrics>,
}

pub type SharedApp = Arc<App>;

impl App {
    /// `dev` allows plain-HTTP issuers on loopback; nothing else changes with it.
    pub fn new(store: SealedStore, audit: AuditLog, limits: Limits, dev: bool) -> Self {
        let mut metrics = Metrics::new();
        metrics.register_store_commits(store.commit_counts());
        let metrics = Arc::new(metrics);
        let stats = crate::oidc::jwks::FetchStats {
            fetches: metrics.jwks_fetches.clone(),
            failures: metrics.jwks_fetch_failures.clone(),
        };
        let jwks = Arc::new(JwksCache::new(dev, limits.jwks_refresh_cooldown, stats));
        let policies = Arc::new(PolicyStore::new(store.clone(), jwks));
        Self {
            kv: Kv::new(store.clone()),
            tokens: TokenStore::new(store.clone()),
            identity: crate::identity::Identity::new(store.clone()),
            database: crate::database::Database::new(store.clone(), metrics.clone()),
            authz: Arc::new(PolicyAuthorizer(policies.clone())),
            policies,
            store,
            audit,
            login_limiter: RateLimiter::new(limits.login_rate_per_second, limits.login_burst),
            limits,
            dev_issuer: OnceLock::new(),
            api_addr: OnceLock::new(),
            metrics,
        }
    }

    /// Seals the store and forgets everything derived from its keys.
    pub fn seal(&self) {
        self.store.seal();
        self.policies.forget();
    }
}

impl Limits {
    /// Applies the `VAULTD_*` limit variables that `vaultd dev` honours too.
    pub fn with_env_overrides(mut self) -> Result<Self, String> {
        if let Ok(v) = std::env::var("VAULTD_JWKS_REFRESH_COOLDOWN") {
            self.jwks_refresh_cooldown = humantime::parse_duration(&v).map_err(|_| {
                "VAULTD_JWKS_REFRESH_COOLDOWN must be a duration like \"30s\"".to_owned()
            })?;
        }
        if let Ok(v) = std::env::var("VAULTD_LOGIN_RATE_PER_SECOND") {
            self.login_rate_per_second = v
                .parse()
                .map_err(|_| "VAULTD_LOGIN_RATE_PER_SECOND must be a whole number".to_owned())?;
        }
        Ok(self)
    }
}

impl std::fmt::Debug for dyn crate::authz::Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authorizer")
    }
}

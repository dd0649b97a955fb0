//! Prometheus metrics, served at `GET /v1/sys/metrics?format=prometheus` (token required).
//! Label values are bounded: roles only when configured, denial reasons from a fixed set,
//! routes from a fixed classification.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    pub role: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub route: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    pub logins: Family<LoginLabels, Counter>,
    pub login_denials: Family<ReasonLabels, Counter>,
    pub secret_reads: Counter,
    /// The latency histogram of each [`Route`] (in the order of `Route::ALL`), resolved once:
    /// no label lookup per request.
    route_durations: Vec<Histogram>,
    pub jwks_fetches: Counter,
    pub jwks_fetch_failures: Counter,
    pub audit_write_failures: Counter,
    pub active_tokens: Gauge,
    pub sealed: Gauge,
    pub leases_active: Gauge,
    pub leases_pending_revocation: Gauge,
    pub lease_revocations: Counter,
    pub lease_revocation_failures: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vaultd");
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register("logins", "JWT logins by role and outcome", logins.clone());
        let login_denials = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "login_denials",
            "Refused JWT logins by reason",
            login_denials.clone(),
        );
        let secret_reads = Counter::default();
        registry.register(
            "secret_reads",
            "Successful KV secret reads",
            secret_reads.clone(),
        );
        let request_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "request_duration_seconds",
            "Request latency by route",
            request_duration.clone(),
        );
        let route_durations = Route::ALL
            .iter()
            .map(|route| {
                request_duration
                    .get_or_create(&RouteLabels {
                        route: route.label(),
                    })
                    .clone()
            })
            .collect();
        let jwks_fetches = Counter::default();
        registry.register(
            "jwks_fetches",
            "Issuer key set fetches",
            jwks_fetches.clone(),
        );
        let jwks_fetch_failures = Counter::default();
        registry.register(
            "jwks_fetch_failures",
            "Failed issuer key set fetches",
            jwks_fetch_failures.clone(),
        );
        let audit_write_failures = Counter::default();
        registry.register(
            "audit_write_failures",
            "Audit lines that could not be written",
            audit_write_failures.clone(),
        );
        let active_tokens = Gauge::default();
        registry.register(
            "active_tokens",
            "Stored, unexpired tokens",
            active_tokens.clone(),
        );
        let sealed = Gauge::default();
        registry.register("sealed", "1 while sealed", sealed.clone());
        let leases_active = Gauge::default();
        registry.register(
            "leases_active",
            "Leases of minted database users not yet ended",
            leases_active.clone(),
        );
        let leases_pending_revocation = Gauge::default();
        registry.register(
            "leases_pending_revocation",
            "Ended leases whose database user is not dropped yet (retried with backoff)",
            leases_pending_revocation.clone(),
        );
        let lease_revocations = Counter::default();
        registry.register(
            "lease_revocations",
            "Database users dropped at the end of their lease",
            lease_revocations.clone(),
        );
        let lease_revocation_failures = Counter::default();
        registry.register(
            "lease_revocation_failures",
            "Failed attempts to drop a database user (each is retried)",
            lease_revocation_failures.clone(),
        );
        Self {
            registry,
            logins,
            login_denials,
            secret_reads,
            route_durations,
            jwks_fetches,
            jwks_fetch_failures,
            audit_write_failures,
            active_tokens,
            sealed,
            leases_active,
            leases_pending_revocation,
            lease_revocations,
            lease_revocation_failures,
        }
    }

    /// Exports the store's counts of combined durable commits (token records, spent `jti`s):
    /// `store_commit_batches` over `store_commits` is how many callers' writes one commit, one
    /// backend batch and one sync, carries.
    pub fn register_store_commits(&mut self, counts: &crate::store::group_commit::CommitCounts) {
        self.registry.register(
            "store_commits",
            "Combined durable store commits (one backend batch and one sync each)",
            counts.commits.clone(),
        );
        self.registry.register(
            "store_commit_batches",
            "Callers' write batches carried by combined durable store commits",
            counts.batches.clone(),
        );
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Coarse route classes for the latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    KvData,
    KvOther,
    Token,
    Database,
    Admin,
    Sys,
    Other,
}

impl Route {
    const ALL: [Route; 8] = [
        Route::Login,
        Route::KvData,
        Route::KvOther,
        Route::Token,
        Route::Database,
        Route::Admin,
        Route::Sys,
        Route::Other,
    ];

    /// Its `route` label.
    fn label(self) -> &'static str {
        match self {
            Route::Login => "login",
            Route::KvData => "kv_data",
            Route::KvOther => "kv_other",
            Route::Token => "token",
            Route::Database => "database",
            Route::Admin => "admin",
            Route::Sys => "sys",
            Route::Other => "other",
        }
    }

    /// The route of a request path.
    pub(crate) fn of(path: &str) -> Route {
        let p = path.strip_prefix("/v1/").unwrap_or(path);
        if p == "auth/jwt/login" {
            Route::Login
        } else if p.starts_with("secret/data/") {
            Route::KvData
        } else if p.starts_with("secret/") {
            Route::KvOther
        } else if p.starts_with("auth/token/") {
            Route::Token
        } else if p.starts_with("database/") || p.starts_with("sys/leases/") {
            Route::Database
        } else if p.starts_with("sys/vaultctl/") {
            Route::Admin
        } else if p.starts_with("sys/") {
            Route::Sys
        } else {
            Route::Other
        }
    }
}

impl Metrics {
    /// Records how long a request to `route` took.
    pub(crate) fn observe_request(&self, route: Route, seconds: f64) {
        if let Some(histogram) = self.route_durations.get(route as usize) {
            histogram.observe(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_timed_under_its_own_label() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, i, "Route::ALL is in declaration order");
        }
        let metrics = Metrics::new();
        metrics.observe_request(Route::of("/v1/secret/data/a"), 0.001);
        metrics.observe_request(Route::of("/v1/auth/jwt/login"), 0.001);
        let text = metrics.encode();
        assert!(text.contains("vaultd_request_duration_seconds_count{route=\"kv_data\"} 1"));
        assert!(text.contains("vaultd_request_duration_seconds_count{route=\"login\"} 1"));
        assert!(text.contains("vaultd_request_duration_seconds_count{route=\"token\"} 0"));
    }
}

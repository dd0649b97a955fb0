//! Issuer key sets: fetched from OIDC discovery, a static `jwks_url` or a `jwks_file`, cached,
//! refreshed only when a token names an unknown `kid` and at most once per cooldown per issuer
//! (single-flight), with the last good set kept while the issuer is unreachable. Responses are
//! size- and time-bounded and never follow redirects. Only configured URLs are ever fetched:
//! nothing in a token (`jku`, `x5u`, `iss`) chooses where to go.

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{AlgorithmFamily, DecodingKey};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Largest JWKS or discovery document accepted.
pub const MAX_DOCUMENT_BYTES: u64 = 256 * 1024;
/// Time limit for one fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JwksSource {
    /// A discovery document (`…/.well-known/openid-configuration`) naming `issuer`; its
    /// `jwks_uri` must be on the same host.
    Discovery {
        url: String,
        issuer: String,
    },
    Url(String),
    File(PathBuf),
}

#[derive(Debug, thiserror::Error, Clone)]
pub enum JwksError {
    #[error("issuer keys unavailable: {0}")]
    Unavailable(String),
    #[error("token signed with a key the issuer does not publish (unknown kid)")]
    UnknownKid,
    #[error("token has no kid and the issuer publishes several keys")]
    AmbiguousKey,
}

/// One verified key.
#[derive(Clone)]
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub family: AlgorithmFamily,
    /// The JWK's own `alg`, when it declares one: the token's must then be the same.
    pub alg: Option<String>,
}

#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, VerifyingKey>,
    all: Vec<VerifyingKey>,
    fetched: Option<Instant>,
}

/// A key set older than this is refetched on next use (keeping it if the issuer is down), so
/// a key the issuer withdrew stops verifying without a restart.
pub const MAX_KEY_SET_AGE: Duration = Duration::from_secs(600);

#[derive(Default)]
struct Entry {
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching (single-flight); holds the time of the last attempt.
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// Fetch counters, shared with the metrics registry.
#[derive(Debug, Default, Clone)]
pub struct FetchStats {
    pub fetches: prometheus_client::metrics::counter::Counter,
    pub failures: prometheus_client::metrics::counter::Counter,
}

pub struct JwksCache {
    entries: Mutex<HashMap<JwksSource, Arc<Entry>>>,
    agent: ureq::Agent,
    pub allow_loopback_http: bool,
    cooldown: Duration,
    pub stats: FetchStats,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("allow_loopback_http", &self.allow_loopback_http)
            .finish_non_exhaustive()
    }
}

/// Whether `url` may be fetched: https, or http to a loopback host when allowed (dev only).
pub fn url_allowed(url: &str, allow_loopback_http: bool) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback && allow_loopback_http {
            return Ok(());
        }
        if loopback {
            return Err(format!(
                "{url}: plain-HTTP issuers are accepted only by `vaultd dev`"
            ));
        }
    }
    Err(format!("{url}: issuer and JWKS URLs must be https"))
}

fn origin(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..scheme_end + host_end])
}

impl JwksCache {
    pub fn new(allow_loopback_http: bool, cooldown: Duration, stats: FetchStats) -> Self {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .timeout_global(Some(FETCH_TIMEOUT))
            .http_status_as_error(false)
            .user_agent("vaultd")
            .build()
            .into();
        Self {
            entries: Mutex::new(HashMap::new()),
            agent,
            allow_loopback_http,
            cooldown,
            stats,
        }
    }

    fn entry(&self, source: &JwksSource) -> Arc<Entry> {
        let mut entries = match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.entry(source.clone()).or_default().clone()
    }

    /// Forgets every cached set (after the issuer configuration changed).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    fn stale(entry: &Entry) -> bool {
        entry
            .keys
            .read()
            .ok()
            .and_then(|g| g.as_ref().and_then(|set| set.fetched))
            .is_some_and(|t| t.elapsed() > MAX_KEY_SET_AGE)
    }

    fn lookup(entry: &Entry, kid: Option<&str>) -> Option<Result<VerifyingKey, JwksError>> {
        let guard = entry.keys.read().ok()?;
        let set = guard.as_ref()?;
        match kid {
            Some(kid) => set.by_kid.get(kid).cloned().map(Ok),
            None => Some(match set.all.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(JwksError::UnknownKid),
                _ => Err(JwksError::AmbiguousKey),
            }),
        }
    }

    /// The key for `kid`, fetching or refreshing the set if needed (never more often than the
    /// cooldown allows).
    pub async fn key(
        &self,
        source: &JwksSource,
        kid: Option<&str>,
    ) -> Result<VerifyingKey, JwksError> {
        let entry = self.entry(source);
        if !Self::stale(&entry)
            && let Some(found) = Self::lookup(&entry, kid)
        {
            return found;
        }
        let mut last_attempt = entry.fetch.lock().await;
        // Someone else may have refreshed while we waited.
        let cached = Self::lookup(&entry, kid);
        if let Some(found) = &cached
            && !Self::stale(&entry)
        {
            return found.clone();
        }
        let have_keys = entry.keys.read().map(|g| g.is_some()).unwrap_or(false);
        if last_attempt.is_some_and(|t| t.elapsed() < self.cooldown) {
            return cached.unwrap_or(Err(if have_keys {
                JwksError::UnknownKid
            } else {
                JwksError::Unavailable("last fetch failed; retrying after a cooldown".into())
            }));
        }
        *last_attempt = Some(Instant::now());
        self.stats.fetches.inc();
        match self.fetch(source).await {
            Ok(mut set) => {
                set.fetched = Some(Instant::now());
                tracing::info!(source = ?source, keys = set.all.len(), "fetched issuer keys");
                if let Ok(mut guard) = entry.keys.write() {
                    *guard = Some(Arc::new(set));
                }
            }
            Err(e) => {
                self.stats.failures.inc();
                tracing::warn!(source = ?source, error = %e, "fetching issuer keys failed; keeping the last good set");
                if !have_keys {
                    return Err(JwksError::Unavailable(e));
                }
            }
        }
        Self::lookup(&entry, kid).unwrap_or(Err(JwksError::UnknownKid))
    }

    async fn fetch(&self, source: &JwksSource) -> Result<KeySet, String> {
        let source = source.clone();
        let agent = self.agent.clone();
        let allow = self.allow_loopback_http;
        tokio::task::spawn_blocking(move || {
            let text = match &source {
                JwksSource::File(path) => {
                    let meta =
                        std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
                    if meta.len() > MAX_DOCUMENT_BYTES {
                        return Err(format!(
                            "{}: larger than {MAX_DOCUMENT_BYTES} bytes",
                            path.display()
                        ));
                    }
                    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
                }
                JwksSource::Url(url) => get(&agent, url, allow)?,
                JwksSource::Discovery {
                    url: discovery_url,
                    issuer,
                } => {
                    let doc: serde_json::Value =
                        serde_json::from_str(&get(&agent, discovery_url, allow)?)
                            .map_err(|_| "discovery document is not JSON".to_owned())?;
                    if doc["issuer"].as_str() != Some(issuer.as_str()) {
                        return Err("discovery document names a different issuer".into());
                    }
                    let jwks_uri = doc["jwks_uri"]
                        .as_str()
                        .ok_or("discovery document has no jwks_uri")?;
                    if origin(jwks_uri) != origin(discovery_url) {
                        return Err(
                            "jwks_uri is on a different host than the issuer; refusing".into()
                        );
                    }
                    get(&agent, jwks_uri, allow)?
                }
            };
            parse_jwks(&text)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

fn get(agent: &ureq::Agent, url: &str, allow_loopback_http: bool) -> Result<String, String> {
    url_allowed(url, allow_loopback_http)?;
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT_BYTES)
        .read_to_string()
        .map_err(|e| format!("GET {url}: {e}"))
}

/// Parses a JWKS, keeping signature keys of the families we verify.
pub(crate) fn parse_jwks(text: &str) -> Result<KeySet, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "JWKS is not JSON".to_owned())?;
    let keys = value["keys"].as_array().ok_or("JWKS has no keys array")?;
    let mut set = KeySet::default();
    for raw in keys {
        // One malformed key must not hide the others.
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let family = key.family();
        if family == AlgorithmFamily::Hmac {
            continue;
        }
        let alg = raw.get("alg").and_then(|a| a.as_str()).map(str::to_owned);
        let verifying = VerifyingKey { key, family, alg };
        if let Some(kid) = &jwk.common.key_id {
            set.by_kid.insert(kid.clone(), verifying.clone());
        }
        set.all.push(verifying);
    }
    if set.all.is_empty() {
        return Err("JWKS holds no usable signing key".into());
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_dev_loopback() {
        assert!(url_allowed("https://token.actions.githubusercontent.com", false).is_ok());
        assert!(url_allowed("http://127.0.0.1:9000/x", true).is_ok());
        assert!(url_allowed("http://localhost:9000", true).is_ok());
        assert!(url_allowed("http://127.0.0.1:9000/x", false).is_err());
        assert!(url_allowed("http://example.com", true).is_err());
        assert!(url_allowed("file:///etc/passwd", true).is_err());
        assert!(url_allowed("http://127.0.0.1.evil.com/", true).is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(origin("https://a.example/x/y"), Some("https://a.example"));
        assert_eq!(
            origin("http://127.0.0.1:8/jwks"),
            Some("http://127.0.0.1:8")
        );
    }

    #[test]
    fn jwks_parsing_rejects_junk() {
        assert!(parse_jwks("nope").is_err());
        assert!(parse_jwks(r#"{"keys":[]}"#).is_err());
        assert!(parse_jwks(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
        assert!(parse_jwks(r#"{"keys":["x", 1, null]}"#).is_err());
    }
}

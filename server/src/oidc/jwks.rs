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

/// Why no key could be found for a token.
#[derive(Debug, thiserror::Error, Clone)]
pub enum JwksError {
    /// No key set is cached and none could be fetched.
    #[error("issuer keys unavailable: {0}")]
    Unavailable(FetchError),
    /// The token's `kid` is not in the issuer's (fresh enough) key set.
    #[error("token signed with a key the issuer does not publish (unknown kid)")]
    UnknownKid,
    /// The token names no `kid` and the set has more than one key.
    #[error("token has no kid and the issuer publishes several keys")]
    AmbiguousKey,
}

/// Why a key set could not be fetched or parsed. The messages go to the server log and the
/// audit line (through [`JwksError::Unavailable`]); they name URLs and files, never keys.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Only https is fetched (plain http to loopback only in `vaultd dev`).
    #[error("{url}: issuer and JWKS URLs must be https")]
    NotHttps { url: String },
    /// Plain http to loopback, outside `vaultd dev`.
    #[error("{url}: plain-HTTP issuers are accepted only by `vaultd dev`")]
    PlainHttpOutsideDev { url: String },
    /// A `jwks_file` cannot be read.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// A `jwks_file` is over [`MAX_DOCUMENT_BYTES`].
    #[error("{path}: larger than {MAX_DOCUMENT_BYTES} bytes")]
    FileTooLarge { path: String },
    /// The request failed (connect, timeout, redirect refused, body too large).
    #[error("GET {url}: {message}")]
    Request { url: String, message: String },
    /// The server answered with a status other than 200.
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("discovery document is not JSON")]
    DiscoveryNotJson,
    /// The discovery document's `issuer` is not the configured one.
    #[error("discovery document names a different issuer")]
    DiscoveryIssuerMismatch,
    #[error("discovery document has no jwks_uri")]
    NoJwksUri,
    /// `jwks_uri` points to another origin than the discovery document.
    #[error("jwks_uri is on a different host than the issuer; refusing")]
    JwksUriOffHost,
    #[error("JWKS is not JSON")]
    NotJson,
    #[error("JWKS has no keys array")]
    NoKeysArray,
    /// Every key was malformed, not for signatures, or of a family we do not verify.
    #[error("JWKS holds no usable signing key")]
    NoUsableKey,
    /// The last fetch failed and the cooldown has not passed.
    #[error("last fetch failed; retrying after a cooldown")]
    CoolingDown,
    /// The blocking fetch task panicked or was cancelled.
    #[error("fetch task failed: {0}")]
    Task(String),
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
pub fn url_allowed(url: &str, allow_loopback_http: bool) -> Result<(), FetchError> {
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
            return Err(FetchError::PlainHttpOutsideDev { url: url.into() });
        }
    }
    Err(FetchError::NotHttps { url: url.into() })
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
                JwksError::Unavailable(FetchError::CoolingDown)
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

    async fn fetch(&self, source: &JwksSource) -> Result<KeySet, FetchError> {
        let source = source.clone();
        let agent = self.agent.clone();
        let allow = self.allow_loopback_http;
        tokio::task::spawn_blocking(move || {
            let text = match &source {
                JwksSource::File(path) => {
                    let unreadable = |e: std::io::Error| FetchError::File {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    };
                    let meta = std::fs::metadata(path).map_err(unreadable)?;
                    if meta.len() > MAX_DOCUMENT_BYTES {
                        return Err(FetchError::FileTooLarge {
                            path: path.display().to_string(),
                        });
                    }
                    std::fs::read_to_string(path).map_err(unreadable)?
                }
                JwksSource::Url(url) => get(&agent, url, allow)?,
                JwksSource::Discovery {
                    url: discovery_url,
                    issuer,
                } => {
                    let doc: serde_json::Value =
                        serde_json::from_str(&get(&agent, discovery_url, allow)?)
                            .map_err(|_| FetchError::DiscoveryNotJson)?;
                    if doc["issuer"].as_str() != Some(issuer.as_str()) {
                        return Err(FetchError::DiscoveryIssuerMismatch);
                    }
                    let jwks_uri = doc["jwks_uri"].as_str().ok_or(FetchError::NoJwksUri)?;
                    if origin(jwks_uri) != origin(discovery_url) {
                        return Err(FetchError::JwksUriOffHost);
                    }
                    get(&agent, jwks_uri, allow)?
                }
            };
            parse_jwks(&text)
        })
        .await
        .map_err(|e| FetchError::Task(e.to_string()))?
    }
}

fn get(agent: &ureq::Agent, url: &str, allow_loopback_http: bool) -> Result<String, FetchError> {
    url_allowed(url, allow_loopback_http)?;
    let failed = |e: ureq::Error| FetchError::Request {
        url: url.into(),
        message: e.to_string(),
    };
    let mut response = agent.get(url).call().map_err(failed)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(FetchError::Status {
            url: url.into(),
            status,
        });
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT_BYTES)
        .read_to_string()
        .map_err(failed)
}

/// Parses a JWKS, keeping signature keys of the families we verify.
pub(crate) fn parse_jwks(text: &str) -> Result<KeySet, FetchError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| FetchError::NotJson)?;
    let keys = value["keys"].as_array().ok_or(FetchError::NoKeysArray)?;
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
        return Err(FetchError::NoUsableKey);
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
        let error = |text: &str| parse_jwks(text).err().expect("refused");
        assert_eq!(error("nope"), FetchError::NotJson);
        assert_eq!(error(r#"{"nokeys":[]}"#), FetchError::NoKeysArray);
        assert_eq!(error(r#"{"keys":[]}"#), FetchError::NoUsableKey);
        assert_eq!(
            error(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
            FetchError::NoUsableKey
        );
        assert_eq!(error(r#"{"keys":["x", 1, null]}"#), FetchError::NoUsableKey);
    }

    #[test]
    fn fetch_error_messages_are_unchanged() {
        let url = "http://127.0.0.1:9/jwks";
        assert_eq!(
            JwksError::Unavailable(url_allowed(url, false).expect_err("refused")).to_string(),
            "issuer keys unavailable: http://127.0.0.1:9/jwks: plain-HTTP issuers are accepted \
             only by `vaultd dev`"
        );
        assert_eq!(
            url_allowed("http://example.com/x", false)
                .expect_err("refused")
                .to_string(),
            "http://example.com/x: issuer and JWKS URLs must be https"
        );
        let status = FetchError::Status {
            url: url.into(),
            status: 404,
        };
        assert_eq!(status.to_string(), "GET http://127.0.0.1:9/jwks: HTTP 404");
        assert_eq!(
            FetchError::FileTooLarge {
                path: "/k.json".into()
            }
            .to_string(),
            "/k.json: larger than 262144 bytes"
        );
        assert_eq!(
            JwksError::Unavailable(FetchError::CoolingDown).to_string(),
            "issuer keys unavailable: last fetch failed; retrying after a cooldown"
        );
    }
}

//! Issuers (`[issuers.NAME]`): which OIDC providers are trusted, and how their keys are found.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::HumanDuration;
use crate::error::PolicyError;

/// Default cap on a token's `exp − iat`: 1 hour (GitLab tokens live as long as the job timeout,
/// which defaults to 1 hour; GitHub's live about 5 minutes).
pub const DEFAULT_MAX_TOKEN_LIFETIME: HumanDuration = HumanDuration::from_secs(60 * 60);
/// Longest `max_token_lifetime` a document may set.
pub const MAX_TOKEN_LIFETIME_LIMIT: HumanDuration = HumanDuration::from_secs(24 * 60 * 60);

const MAX_URL_LEN: usize = 2048;
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// A trusted OIDC issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The exact `iss` value tokens carry (compared byte for byte, trailing slash included).
    /// `https://`, or `http://` on a loopback host for development (see
    /// [`Issuer::is_loopback_http`]).
    pub issuer: String,
    /// Signature algorithms accepted from this issuer. The token's header never chooses.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Longest accepted `exp − iat`.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime: HumanDuration,
    /// Fetch the key set from this URL instead of using discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Read the key set from this file (for air-gapped set-ups and tests); the server does the
    /// reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    /// Base URL for OIDC discovery (`<base>/.well-known/openid-configuration`); defaults to
    /// `issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256]
}

fn default_max_token_lifetime() -> HumanDuration {
    DEFAULT_MAX_TOKEN_LIFETIME
}

/// Where the server gets an issuer's signing keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// Fetch this discovery document and follow its `jwks_uri`.
    Discovery(String),
    /// Fetch the key set from this URL.
    JwksUrl(&'a str),
    /// Read the key set from this file.
    JwksFile(&'a str),
}

impl Issuer {
    /// Whether the issuer, or one of its key URLs, uses plain `http://` (allowed by the document
    /// only on `127.0.0.1`, `localhost` or `[::1]`). The server should refuse such an issuer
    /// outside `vaultd dev`.
    pub fn is_loopback_http(&self) -> bool {
        [
            Some(&self.issuer),
            self.jwks_url.as_ref(),
            self.discovery_url.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|url| url.starts_with("http://"))
    }

    /// Where the keys come from: `jwks_file`, else `jwks_url`, else discovery under
    /// `discovery_url` (or `issuer`).
    pub fn key_source(&self) -> KeySource<'_> {
        if let Some(file) = &self.jwks_file {
            KeySource::JwksFile(file)
        } else if let Some(url) = &self.jwks_url {
            KeySource::JwksUrl(url)
        } else {
            let base = self.discovery_url.as_deref().unwrap_or(&self.issuer);
            KeySource::Discovery(format!("{}{WELL_KNOWN}", base.trim_end_matches('/')))
        }
    }

    /// Checks one issuer on its own.
    pub(crate) fn check(&self, name: &str) -> Result<(), PolicyError> {
        let invalid = |field: &str, reason: String| PolicyError::InvalidField {
            table: "issuers",
            name: name.to_owned(),
            field: field.to_owned(),
            reason,
        };
        check_url(&self.issuer, false).map_err(|reason| invalid("issuer", reason))?;
        if let Some(url) = &self.jwks_url {
            check_url(url, true).map_err(|reason| invalid("jwks_url", reason))?;
        }
        if let Some(url) = &self.discovery_url {
            check_url(url, false).map_err(|reason| invalid("discovery_url", reason))?;
        }
        if self
            .jwks_file
            .as_deref()
            .is_some_and(|f| f.trim().is_empty())
        {
            return Err(invalid("jwks_file", "cannot be empty".into()));
        }
        let sources = [
            self.jwks_url.is_some(),
            self.jwks_file.is_some(),
            self.discovery_url.is_some(),
        ];
        if sources.into_iter().filter(|set| *set).count() > 1 {
            return Err(invalid(
                "jwks_url",
                "set at most one of `jwks_url`, `jwks_file` and `discovery_url`".into(),
            ));
        }
        if self.algorithms.is_empty() {
            return Err(invalid(
                "algorithms",
                "list at least one algorithm (GitHub and GitLab sign with RS256)".into(),
            ));
        }
        for (index, algorithm) in self.algorithms.iter().enumerate() {
            if self.algorithms[..index].contains(algorithm) {
                return Err(invalid(
                    "algorithms",
                    format!("{algorithm} is listed twice"),
                ));
            }
        }
        if self.max_token_lifetime.as_duration().is_zero() {
            return Err(invalid(
                "max_token_lifetime",
                "must be longer than zero".into(),
            ));
        }
        if self.max_token_lifetime > MAX_TOKEN_LIFETIME_LIMIT {
            return Err(invalid(
                "max_token_lifetime",
                format!(
                    "{} is more than the limit of {MAX_TOKEN_LIFETIME_LIMIT}; CI tokens should be short-lived",
                    self.max_token_lifetime
                ),
            ));
        }
        Ok(())
    }
}

/// Checks an issuer or key URL: `https://host[:port][/path]`, or `http://` on a loopback host;
/// no user info or fragment, and no query unless `allow_query`.
fn check_url(url: &str, allow_query: bool) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("a URL is limited to {MAX_URL_LEN} bytes"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains spaces or control characters"));
    }
    let (rest, https) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else {
        return Err(format!("{url:?} must start with `https://`"));
    };
    if url.contains('#') {
        return Err(format!("{url:?} cannot have a fragment (`#…`)"));
    }
    if !allow_query && url.contains('?') {
        return Err(format!("{url:?} cannot have a query (`?…`)"));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("{url:?} cannot hold user info (`user@`)"));
    }
    let (host, port) =
        split_host_port(authority).ok_or_else(|| format!("{url:?} has no valid host[:port]"))?;
    if port.is_some_and(|port| !port.parse::<u16>().is_ok_and(|port| port != 0)) {
        return Err(format!("{url:?} has an invalid port"));
    }
    if !https && !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return Err(format!(
            "{url:?} must use `https://`; plain `http://` is only accepted on 127.0.0.1, localhost or [::1] for development"
        ));
    }
    Ok(())
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    host_ok.then_some((host, port))
}

/// A JWT signature algorithm an issuer may use. `none` and the HMAC algorithms (`HS*`) do not
/// exist here on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(
    clippy::upper_case_acronyms,
    reason = "the names are the JOSE identifiers"
)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (GitHub, GitLab).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The JOSE name (`RS256`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE name, explaining refusals of `none` and `HS*`.
    pub fn parse(name: &str) -> Result<Algorithm, String> {
        if let Some(algorithm) = Algorithm::ALL.into_iter().find(|a| a.as_str() == name) {
            return Ok(algorithm);
        }
        if name.eq_ignore_ascii_case("none") {
            return Err(
                "the `none` algorithm means an unsigned token and is never accepted".to_owned(),
            );
        }
        if name.to_ascii_uppercase().starts_with("HS") {
            return Err(format!(
                "{name} is never accepted: with HMAC algorithms the issuer's public key would \
                 work as a shared secret"
            ));
        }
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        Err(format!(
            "unknown algorithm {name:?}; expected one of {}",
            names.join(", ")
        ))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AlgorithmVisitor;

        impl Visitor<'_> for AlgorithmVisitor {
            type Value = Algorithm;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an algorithm name such as \"RS256\"")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Algorithm, E> {
                Algorithm::parse(name).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(AlgorithmVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(body: &str) -> Issuer {
        toml::from_str(body).expect("issuer parses")
    }

    #[test]
    fn defaults_and_key_source() {
        let github = issuer("issuer = \"https://token.actions.githubusercontent.com\"");
        assert_eq!(github.algorithms, vec![Algorithm::RS256]);
        assert_eq!(github.max_token_lifetime, DEFAULT_MAX_TOKEN_LIFETIME);
        assert!(github.check("github").is_ok());
        assert!(!github.is_loopback_http());
        assert_eq!(
            github.key_source(),
            KeySource::Discovery(
                "https://token.actions.githubusercontent.com/.well-known/openid-configuration"
                    .into()
            )
        );
        let file = issuer("issuer = \"https://gitlab.example.com\"\njwks_file = \"keys.json\"");
        assert_eq!(file.key_source(), KeySource::JwksFile("keys.json"));
    }

    #[test]
    fn url_rules() {
        for good in [
            "https://token.actions.githubusercontent.com",
            "https://gitlab.example.com/",
            "https://ghes.example.com:8443/_services/token",
            "http://127.0.0.1:5556",
            "http://localhost/dex",
            "http://[::1]:8080",
        ] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        for bad in [
            "token.actions.githubusercontent.com",
            "http://gitlab.example.com",
            "http://127.0.0.2",
            "http://localhost.evil.com",
            "https://user@host",
            "https://host/#frag",
            "https://host/?q=1",
            "https://host:0",
            "https://host:99999",
            "https://",
            "https://host name",
            "ftp://host",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("https://host/keys?v=1", true).is_ok());
    }

    #[test]
    fn loopback_http_is_flagged() {
        let dev = issuer("issuer = \"http://127.0.0.1:8200/dev-oidc\"");
        assert!(dev.check("dev").is_ok());
        assert!(dev.is_loopback_http());
        let mixed = issuer("issuer = \"https://a.example\"\njwks_url = \"http://localhost/keys\"");
        assert!(mixed.check("mixed").is_ok());
        assert!(mixed.is_loopback_http());
    }

    #[test]
    fn algorithms() {
        for refused in ["none", "HS256", "hs512", "RS257"] {
            let text = format!("issuer = \"https://a.example\"\nalgorithms = [\"{refused}\"]");
            let err = toml::from_str::<Issuer>(&text)
                .expect_err(refused)
                .to_string();
            assert!(err.contains(refused), "{err}");
        }
        let all = issuer(
            "issuer = \"https://a.example\"\nalgorithms = [\"RS256\", \"PS512\", \"ES384\", \"EdDSA\"]",
        );
        assert_eq!(all.algorithms.len(), 4);
        let empty = issuer("issuer = \"https://a.example\"\nalgorithms = []");
        assert!(empty.check("e").is_err());
        let twice = issuer("issuer = \"https://a.example\"\nalgorithms = [\"RS256\", \"RS256\"]");
        assert!(twice.check("t").is_err());
    }

    #[test]
    fn lifetime_and_source_limits() {
        let long = issuer("issuer = \"https://a.example\"\nmax_token_lifetime = \"2d\"");
        assert!(long.check("l").is_err());
        let both = issuer(
            "issuer = \"https://a.example\"\njwks_url = \"https://a.example/k\"\njwks_file = \"k.json\"",
        );
        let err = both.check("b").expect_err("two sources").to_string();
        assert!(err.contains("at most one"), "{err}");
    }
}

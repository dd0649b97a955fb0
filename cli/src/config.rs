//! Where the address, token and CA file come from: flag, then `VAULTCTL_*`, then `VAULT_*`.
//!
//! clap's `env` takes a single variable, so the fallback is done here, as pure functions over
//! an environment lookup (tests pass a map). Resolving by hand also keeps clap from printing
//! the token's value in `--help`.

use std::path::PathBuf;

use crate::error::Error;
use crate::secret::Secret;

/// Used when neither `--addr` nor an address variable is set.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";

/// The first candidate that is set and not blank, trimmed.
fn first_set(candidates: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    candidates
        .into_iter()
        .flatten()
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
}

/// `--addr`, else `VAULTCTL_ADDR`, else `VAULT_ADDR`, else [`DEFAULT_ADDR`]; validated and
/// without a trailing slash.
pub fn resolve_addr(
    flag: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    let raw = first_set([flag, env("VAULTCTL_ADDR"), env("VAULT_ADDR")])
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    normalize_addr(&raw)
}

/// Checks the scheme and host of an address and drops trailing slashes.
pub fn normalize_addr(raw: &str) -> Result<String, Error> {
    let addr = raw.trim().trim_end_matches('/');
    let bad = |why: &str| {
        Error::failed(
            format!("using address {addr:?}"),
            why,
            "set VAULTCTL_ADDR (or --addr) to a URL like https://vault.example.com:8200",
        )
    };
    let lower = addr.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") || lower.starts_with("http://") {
        addr.split_once("://").map(|(_, rest)| rest).unwrap_or("")
    } else {
        return Err(bad("it does not start with http:// or https://"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("it has no host"));
    }
    if rest.contains(['?', '#']) || addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it is not a plain base URL"));
    }
    Ok(addr.to_owned())
}

/// `--token`, else `VAULTCTL_TOKEN`, else `VAULT_TOKEN`.
pub fn resolve_token(flag: Option<String>, env: impl Fn(&str) -> Option<String>) -> Option<Secret> {
    first_set([flag, env("VAULTCTL_TOKEN"), env("VAULT_TOKEN")]).map(Secret::new)
}

/// `--ca-cert`, else `VAULTCTL_CACERT`, else `VAULT_CACERT`.
pub fn resolve_ca_cert(
    flag: Option<PathBuf>,
    env: impl Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    flag.or_else(|| first_set([env("VAULTCTL_CACERT"), env("VAULT_CACERT")]).map(PathBuf::from))
}

/// The process environment, as a lookup for the functions above (non-UTF-8 values count as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn addr_precedence() {
        let both = env_of(&[
            ("VAULTCTL_ADDR", "https://a:8200"),
            ("VAULT_ADDR", "https://b:8200"),
        ]);
        assert_eq!(
            resolve_addr(Some("http://flag:1".into()), &both).ok(),
            Some("http://flag:1".into())
        );
        assert_eq!(
            resolve_addr(None, &both).ok(),
            Some("https://a:8200".into())
        );
        let fallback = env_of(&[("VAULTCTL_ADDR", " "), ("VAULT_ADDR", "https://b:8200/")]);
        assert_eq!(
            resolve_addr(None, &fallback).ok(),
            Some("https://b:8200".into())
        );
        assert_eq!(
            resolve_addr(None, env_of(&[])).ok(),
            Some(DEFAULT_ADDR.into())
        );
    }

    #[test]
    fn addr_validation() {
        assert!(normalize_addr("127.0.0.1:8200").is_err());
        assert!(normalize_addr("ftp://x").is_err());
        assert!(normalize_addr("http://").is_err());
        assert!(normalize_addr("http://x/?a=b").is_err());
        assert_eq!(
            normalize_addr("HTTPS://Vault.example.com:8200//").ok(),
            Some("HTTPS://Vault.example.com:8200".into())
        );
    }

    #[test]
    fn token_precedence() {
        let both = env_of(&[("VAULTCTL_TOKEN", "t-ctl"), ("VAULT_TOKEN", "t-vault")]);
        let expose = |s: Option<Secret>| s.map(|s| s.expose().to_owned());
        assert_eq!(
            expose(resolve_token(Some("t-flag".into()), &both)),
            Some("t-flag".into())
        );
        assert_eq!(expose(resolve_token(None, &both)), Some("t-ctl".into()));
        let fallback = env_of(&[("VAULTCTL_TOKEN", ""), ("VAULT_TOKEN", "t-vault\n")]);
        assert_eq!(
            expose(resolve_token(None, &fallback)),
            Some("t-vault".into())
        );
        assert!(resolve_token(None, env_of(&[])).is_none());
    }

    #[test]
    fn ca_cert_precedence() {
        let env = env_of(&[("VAULT_CACERT", "/b.pem")]);
        assert_eq!(
            resolve_ca_cert(Some("/a.pem".into()), &env),
            Some(PathBuf::from("/a.pem"))
        );
        assert_eq!(resolve_ca_cert(None, &env), Some(PathBuf::from("/b.pem")));
    }
}

//! `vaultd.toml`, overridden by `VAULTD_*` environment variables, overridden by flags.

use crate::state::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_disable: Option<bool>,
    pub audit_log: Option<PathBuf>,
    #[serde(default)]
    pub limits: FileLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub max_body_bytes: Option<usize>,
    pub max_header_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub request_timeout: Option<String>,
    pub header_read_timeout: Option<String>,
    pub login_rate_per_second: Option<u32>,
    pub login_burst: Option<u32>,
    pub jwks_refresh_cooldown: Option<String>,
}

/// The resolved configuration `vaultd server` runs with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub audit_log: Option<PathBuf>,
    pub limits: Limits,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(ConfigError::Invalid(format!(
            "{name} must be true or false"
        ))),
    }
}

fn parse_duration(name: &str, v: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(v)
        .map_err(|_| ConfigError::Invalid(format!("{name} must be a duration like \"30s\"")))
}

fn parse_num(name: &str, v: &str) -> Result<usize, ConfigError> {
    v.parse()
        .map_err(|_| ConfigError::Invalid(format!("{name} must be a positive integer")))
}

impl ServerConfig {
    /// Loads `path` (if any), applies `VAULTD_*` variables, then the flag overrides.
    pub fn load(
        path: Option<&Path>,
        listen_flag: Option<String>,
        data_dir_flag: Option<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let file = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: p.display().to_string(),
                    message: e.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        let listen = listen_flag
            .or_else(|| env("VAULTD_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8200".into());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            ConfigError::Invalid(format!("listen address {listen:?} is not IP:PORT"))
        })?;
        let data_dir = data_dir_flag
            .or_else(|| env("VAULTD_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .ok_or_else(|| {
                ConfigError::Invalid(
                    "data_dir is required (config, VAULTD_DATA_DIR or --data-dir)".into(),
                )
            })?;
        let tls_cert = env("VAULTD_TLS_CERT").map(PathBuf::from).or(file.tls_cert);
        let tls_key = env("VAULTD_TLS_KEY").map(PathBuf::from).or(file.tls_key);
        let tls_disable = match env("VAULTD_TLS_DISABLE") {
            Some(v) => parse_bool("VAULTD_TLS_DISABLE", &v)?,
            None => file.tls_disable.unwrap_or(false),
        };
        let tls = match (tls_cert, tls_key) {
            (Some(c), Some(k)) if !tls_disable => Some((c, k)),
            (Some(_), None) | (None, Some(_)) if !tls_disable => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key must be given together".into(),
                ));
            }
            _ => None,
        };
        if tls.is_none() && !tls_disable && !listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "refusing plain HTTP on non-loopback address {listen}: set tls_cert and tls_key, \
                 or tls_disable = true if a TLS proxy sits in front"
            )));
        }
        let audit_log = env("VAULTD_AUDIT_LOG")
            .map(PathBuf::from)
            .or(file.audit_log);
        let defaults = Limits::default();
        let fl = file.limits;
        let limits = Limits {
            max_body_bytes: match env("VAULTD_MAX_BODY_BYTES") {
                Some(v) => parse_num("VAULTD_MAX_BODY_BYTES", &v)?,
                None => fl.max_body_bytes.unwrap_or(defaults.max_body_bytes),
            },
            max_header_bytes: fl.max_header_bytes.unwrap_or(defaults.max_header_bytes),
            max_connections: match env("VAULTD_MAX_CONNECTIONS") {
                Some(v) => parse_num("VAULTD_MAX_CONNECTIONS", &v)?,
                None => fl.max_connections.unwrap_or(defaults.max_connections),
            },
            request_timeout: match fl.request_timeout {
                Some(v) => parse_duration("limits.request_timeout", &v)?,
                None => defaults.request_timeout,
            },
            header_read_timeout: match fl.header_read_timeout {
                Some(v) => parse_duration("limits.header_read_timeout", &v)?,
                None => defaults.header_read_timeout,
            },
            login_rate_per_second: fl
                .login_rate_per_second
                .unwrap_or(defaults.login_rate_per_second),
            login_burst: fl.login_burst.unwrap_or(defaults.login_burst),
            jwks_refresh_cooldown: match fl.jwks_refresh_cooldown {
                Some(v) => parse_duration("limits.jwks_refresh_cooldown", &v)?,
                None => defaults.jwks_refresh_cooldown,
            },
        };
        let limits = limits.with_env_overrides().map_err(ConfigError::Invalid)?;
        if limits.max_connections == 0 || limits.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "limits must be greater than zero".into(),
            ));
        }
        Ok(Self {
            listen,
            data_dir,
            tls,
            audit_log,
            limits,
        })
    }
}

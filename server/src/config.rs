//! `vaultd.toml`, overridden by `VAULTD_*` environment variables, overridden by flags.
//!
//! Loading is a pure function of the file, an environment lookup and the flags: `main` passes
//! [`process_env`], tests pass a map. A variable set to the empty string counts as unset.

use crate::state::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown or mistyped key.
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    /// A value (from the file, the environment or a flag) is unusable; says which and why.
    #[error("{0}")]
    Invalid(String),
}

/// The process environment as a lookup for [`ServerConfig::load`] (non-UTF-8 values count as
/// unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
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
    /// `postgresql://…`: the shared store of several replicas; without it, sled in `data_dir`.
    pub storage_url: Option<String>,
    /// A file holding the database password (mode 0600 or stricter).
    pub storage_password_file: Option<PathBuf>,
    /// PEM roots that sign the database's certificate (default: the web PKI roots).
    pub storage_ca_file: Option<PathBuf>,
    pub storage_pool_size: Option<usize>,
    pub storage_connect_timeout: Option<String>,
    pub storage_statement_timeout: Option<String>,
    /// A file holding the unseal key (hex or base64), read at start to unseal this replica.
    pub unseal_key_file: Option<PathBuf>,
    /// The URL clients reach vaultd at (`https://vault.example.com:8200`): the default
    /// identity-token issuer is this plus `/v1/identity/oidc`.
    pub api_addr: Option<String>,
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
/// Where the store lives.
#[derive(Debug)]
pub enum Storage {
    /// The embedded sled database in this directory.
    Sled(PathBuf),
    /// A PostgreSQL database shared by every replica.
    Postgres(crate::store::postgres::PgOptions),
}

/// Reads a secret from a file that only its owner may read; trailing white space dropped.
pub fn read_private_file(
    what: &str,
    path: &Path,
) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    let invalid =
        |message: String| ConfigError::Invalid(format!("{what} {}: {message}", path.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| invalid(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(invalid(format!(
                "is readable by group or others (mode {:o}); run: chmod 600 {}",
                mode & 0o777,
                path.display()
            )));
        }
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?);
    Ok(zeroize::Zeroizing::new(text.trim_end().to_owned()))
}

#[derive(Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub storage: Storage,
    /// Unseal from this file at start (and whenever the store is found sealed and initialised).
    pub unseal_key_file: Option<PathBuf>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub audit_log: Option<PathBuf>,
    /// Where clients reach vaultd; `None` uses the listen address.
    pub api_addr: Option<String>,
    pub limits: Limits,
}

/// `lookup`, with empty values treated as unset.
fn non_empty(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.is_empty())
}

/// Applies the `VAULTD_*` limit variables that `vaultd dev` honours too.
pub fn limits_from_env(
    mut limits: Limits,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Limits, ConfigError> {
    if let Some(v) = non_empty(&env, "VAULTD_JWKS_REFRESH_COOLDOWN") {
        limits.jwks_refresh_cooldown = humantime::parse_duration(&v).map_err(|_| {
            ConfigError::Invalid(
                "VAULTD_JWKS_REFRESH_COOLDOWN must be a duration like \"30s\"".into(),
            )
        })?;
    }
    if let Some(v) = non_empty(&env, "VAULTD_LOGIN_RATE_PER_SECOND") {
        limits.login_rate_per_second = v.parse().map_err(|_| {
            ConfigError::Invalid("VAULTD_LOGIN_RATE_PER_SECOND must be a whole number".into())
        })?;
    }
    Ok(limits)
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

/// The PostgreSQL settings from the environment alone (`vaultd dev`, `operator migrate`).
pub fn postgres_options_from_env(
    url: String,
    env: impl Fn(&str) -> Option<String>,
) -> Result<crate::store::postgres::PgOptions, ConfigError> {
    postgres_options(url, &FileConfig::default(), &|name: &str| {
        non_empty(&env, name)
    })
}

/// The PostgreSQL settings: URL (no password in it), the password from
/// `VAULTD_STORAGE_PASSWORD` or a private file, pool size and timeouts.
fn postgres_options(
    url: String,
    file: &FileConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<crate::store::postgres::PgOptions, ConfigError> {
    let password_file = env("VAULTD_STORAGE_PASSWORD_FILE")
        .map(PathBuf::from)
        .or(file.storage_password_file.clone());
    let password = match (env("VAULTD_STORAGE_PASSWORD"), password_file) {
        (Some(p), _) => Some(zeroize::Zeroizing::new(p)),
        (None, Some(path)) => Some(read_private_file("storage_password_file", &path)?),
        (None, None) => None,
    };
    let duration = |name: &str, value: &Option<String>, default: Duration| match value {
        Some(v) => parse_duration(name, v),
        None => Ok(default),
    };
    let pool_size = match env("VAULTD_STORAGE_POOL_SIZE") {
        Some(v) => parse_num("VAULTD_STORAGE_POOL_SIZE", &v)?,
        None => file.storage_pool_size.unwrap_or(8),
    };
    if pool_size == 0 || pool_size > 1000 {
        return Err(ConfigError::Invalid(
            "storage_pool_size must be between 1 and 1000".into(),
        ));
    }
    Ok(crate::store::postgres::PgOptions {
        url,
        password,
        ca_file: env("VAULTD_STORAGE_CA_FILE")
            .map(PathBuf::from)
            .or(file.storage_ca_file.clone()),
        pool_size,
        connect_timeout: duration(
            "storage_connect_timeout",
            &file.storage_connect_timeout,
            Duration::from_secs(5),
        )?,
        statement_timeout: duration(
            "storage_statement_timeout",
            &file.storage_statement_timeout,
            Duration::from_secs(5),
        )?,
    })
}

impl ServerConfig {
    /// Loads `path` (if any), applies `VAULTD_*` variables looked up in `env`, then the flag
    /// overrides.
    /// The sled data dir, when the store is sled.
    pub fn data_dir(&self) -> Option<&Path> {
        match &self.storage {
            Storage::Sled(dir) => Some(dir),
            Storage::Postgres(_) => None,
        }
    }

    pub fn load(
        path: Option<&Path>,
        listen_flag: Option<String>,
        data_dir_flag: Option<PathBuf>,
        storage_url_flag: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = |name: &str| non_empty(&env, name);
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
            .or(file.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:8200".into());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            ConfigError::Invalid(format!("listen address {listen:?} is not IP:PORT"))
        })?;
        let storage_url = storage_url_flag
            .or_else(|| env("VAULTD_STORAGE_URL"))
            .or(file.storage_url.clone());
        let data_dir = data_dir_flag
            .or_else(|| env("VAULTD_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir.clone());
        let storage = match storage_url {
            Some(url) => Storage::Postgres(postgres_options(url, &file, &env)?),
            None => Storage::Sled(data_dir.ok_or_else(|| {
                ConfigError::Invalid(
                    "data_dir is required (config, VAULTD_DATA_DIR or --data-dir), or a storage_url"
                        .into(),
                )
            })?),
        };
        let unseal_key_file = env("VAULTD_UNSEAL_KEY_FILE")
            .map(PathBuf::from)
            .or(file.unseal_key_file.clone());
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
        let api_addr = env("VAULTD_API_ADDR").or(file.api_addr);
        if let Some(addr) = &api_addr
            && !(addr.starts_with("https://") || addr.starts_with("http://"))
        {
            return Err(ConfigError::Invalid(format!(
                "api_addr must be an http:// or https:// URL, not {addr:?}"
            )));
        }
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
        let limits = limits_from_env(limits, env)?;
        if limits.max_connections == 0 || limits.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "limits must be greater than zero".into(),
            ));
        }
        Ok(Self {
            listen,
            storage,
            unseal_key_file,
            tls,
            audit_log,
            api_addr,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A config file that removes itself.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "vaultd-config-test-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::write(&path, text).expect("write config");
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        listen_flag: Option<&str>,
        data_dir_flag: Option<&str>,
    ) -> Result<ServerConfig, ConfigError> {
        let file = file.map(TempFile::new);
        ServerConfig::load(
            file.as_ref().map(|f| f.0.as_path()),
            listen_flag.map(str::to_owned),
            data_dir_flag.map(PathBuf::from),
            None,
            env_of(env),
        )
    }

    fn error(
        file: Option<&str>,
        env: &[(&str, &str)],
        listen_flag: Option<&str>,
        data_dir_flag: Option<&str>,
    ) -> String {
        load(file, env, listen_flag, data_dir_flag)
            .expect_err("should be refused")
            .to_string()
    }

    const FILE: &str = r#"
listen = "127.0.0.1:1111"
data_dir = "/from/file"
audit_log = "/from/file/audit.log"
[limits]
max_body_bytes = 1000
max_connections = 10
request_timeout = "7s"
header_read_timeout = "3s"
login_rate_per_second = 5
login_burst = 6
jwks_refresh_cooldown = "9s"
"#;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = load(None, &[], None, Some("/d")).expect("load");
        let defaults = Limits::default();
        assert_eq!(config.listen, "127.0.0.1:8200".parse().expect("addr"));
        assert_eq!(config.data_dir(), Some(Path::new("/d")));
        assert!(config.tls.is_none());
        assert!(config.audit_log.is_none());
        assert_eq!(config.limits.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(config.limits.request_timeout, defaults.request_timeout);
    }

    #[test]
    fn file_values_are_used() {
        let config = load(Some(FILE), &[], None, None).expect("load");
        assert_eq!(config.listen, "127.0.0.1:1111".parse().expect("addr"));
        assert_eq!(config.data_dir(), Some(Path::new("/from/file")));
        assert_eq!(
            config.audit_log,
            Some(PathBuf::from("/from/file/audit.log"))
        );
        let l = &config.limits;
        assert_eq!((l.max_body_bytes, l.max_connections), (1000, 10));
        assert_eq!(l.request_timeout, Duration::from_secs(7));
        assert_eq!(l.header_read_timeout, Duration::from_secs(3));
        assert_eq!((l.login_rate_per_second, l.login_burst), (5, 6));
        assert_eq!(l.jwks_refresh_cooldown, Duration::from_secs(9));
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let env = [
            ("VAULTD_LISTEN", "127.0.0.1:2222"),
            ("VAULTD_DATA_DIR", "/from/env"),
            ("VAULTD_AUDIT_LOG", "/from/env/audit.log"),
            ("VAULTD_MAX_BODY_BYTES", "2000"),
            ("VAULTD_MAX_CONNECTIONS", "20"),
            ("VAULTD_JWKS_REFRESH_COOLDOWN", "1s"),
            ("VAULTD_LOGIN_RATE_PER_SECOND", "0"),
        ];
        let config = load(Some(FILE), &env, None, None).expect("load");
        assert_eq!(config.listen, "127.0.0.1:2222".parse().expect("addr"));
        assert_eq!(config.data_dir(), Some(Path::new("/from/env")));
        assert_eq!(config.audit_log, Some(PathBuf::from("/from/env/audit.log")));
        let l = &config.limits;
        assert_eq!((l.max_body_bytes, l.max_connections), (2000, 20));
        assert_eq!(l.jwks_refresh_cooldown, Duration::from_secs(1));
        assert_eq!(l.login_rate_per_second, 0);

        let config =
            load(Some(FILE), &env, Some("127.0.0.1:3333"), Some("/from/flag")).expect("load");
        assert_eq!(config.listen, "127.0.0.1:3333".parse().expect("addr"));
        assert_eq!(config.data_dir(), Some(Path::new("/from/flag")));
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let env = [("VAULTD_LISTEN", ""), ("VAULTD_LOGIN_RATE_PER_SECOND", "")];
        let config = load(Some(FILE), &env, None, None).expect("load");
        assert_eq!(config.listen, "127.0.0.1:1111".parse().expect("addr"));
        assert_eq!(config.limits.login_rate_per_second, 5);
    }

    #[test]
    fn tls_from_file_or_env_and_plain_http_only_on_loopback() {
        let tls = "tls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n";
        let config = load(Some(tls), &[], Some("0.0.0.0:8200"), Some("/d")).expect("load");
        assert_eq!(
            config.tls,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
        let env = [("VAULTD_TLS_CERT", "/e.pem"), ("VAULTD_TLS_KEY", "/ek.pem")];
        let config = load(Some(tls), &env, None, Some("/d")).expect("load");
        assert_eq!(
            config.tls,
            Some((PathBuf::from("/e.pem"), PathBuf::from("/ek.pem")))
        );
        // tls_disable (a TLS proxy in front) allows plain HTTP anywhere, from file or env.
        let config = load(
            Some("tls_disable = true"),
            &[],
            Some("0.0.0.0:8200"),
            Some("/d"),
        )
        .expect("load");
        assert!(config.tls.is_none());
        let env = [("VAULTD_TLS_DISABLE", "true")];
        assert!(
            load(Some(tls), &env, None, Some("/d"))
                .expect("load")
                .tls
                .is_none()
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_message_naming_them() {
        /// File text, environment, `--listen`, and what the message must say.
        type Case<'a> = (
            Option<&'a str>,
            Vec<(&'a str, &'a str)>,
            Option<&'a str>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                None,
                vec![],
                Some("nope"),
                "listen address \"nope\" is not IP:PORT",
            ),
            (
                None,
                vec![("VAULTD_LISTEN", "localhost")],
                None,
                "listen address \"localhost\" is not IP:PORT",
            ),
            (
                Some("listen = \"1.2.3.4\""),
                vec![],
                None,
                "listen address \"1.2.3.4\" is not IP:PORT",
            ),
            (
                None,
                vec![("VAULTD_TLS_DISABLE", "maybe")],
                None,
                "VAULTD_TLS_DISABLE must be true or false",
            ),
            (
                None,
                vec![("VAULTD_MAX_BODY_BYTES", "-1")],
                None,
                "VAULTD_MAX_BODY_BYTES must be a positive integer",
            ),
            (
                None,
                vec![("VAULTD_MAX_CONNECTIONS", "many")],
                None,
                "VAULTD_MAX_CONNECTIONS must be a positive integer",
            ),
            (
                None,
                vec![("VAULTD_MAX_CONNECTIONS", "0")],
                None,
                "limits must be greater than zero",
            ),
            (
                Some("[limits]\nmax_body_bytes = 0"),
                vec![],
                None,
                "limits must be greater than zero",
            ),
            (
                Some("[limits]\nrequest_timeout = \"soon\""),
                vec![],
                None,
                "limits.request_timeout must be a duration like \"30s\"",
            ),
            (
                Some("[limits]\nheader_read_timeout = \"10\""),
                vec![],
                None,
                "limits.header_read_timeout must be a duration like \"30s\"",
            ),
            (
                Some("[limits]\njwks_refresh_cooldown = \"x\""),
                vec![],
                None,
                "limits.jwks_refresh_cooldown must be a duration like \"30s\"",
            ),
            (
                None,
                vec![("VAULTD_JWKS_REFRESH_COOLDOWN", "later")],
                None,
                "VAULTD_JWKS_REFRESH_COOLDOWN must be a duration like \"30s\"",
            ),
            (
                None,
                vec![("VAULTD_LOGIN_RATE_PER_SECOND", "1.5")],
                None,
                "VAULTD_LOGIN_RATE_PER_SECOND must be a whole number",
            ),
            (
                Some("tls_cert = \"/c.pem\""),
                vec![],
                None,
                "tls_cert and tls_key must be given together",
            ),
            (
                None,
                vec![("VAULTD_TLS_KEY", "/k.pem")],
                None,
                "tls_cert and tls_key must be given together",
            ),
            (
                None,
                vec![],
                Some("0.0.0.0:8200"),
                "refusing plain HTTP on non-loopback address 0.0.0.0:8200",
            ),
        ];
        for (file, env, listen, expected) in cases {
            let message = error(file, &env, listen, Some("/d"));
            assert!(
                message.contains(expected),
                "{file:?} {env:?} {listen:?}: got {message:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn private_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let file = TempFile::new("0123456789abcdef-not-a-real-key\n");
        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_private_file("unseal_key_file", &file.0)
            .expect_err("group/world readable")
            .to_string();
        assert!(err.contains("readable by group or others"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("not-a-real-key"), "{err}");
        std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let text = read_private_file("unseal_key_file", &file.0).expect("private");
        assert_eq!(text.as_str(), "0123456789abcdef-not-a-real-key");
    }

    #[test]
    fn a_storage_url_selects_postgres_and_makes_data_dir_optional() {
        let config = load(
            Some("storage_url = \"postgresql://vaultd@db/vaultd?sslmode=verify-full\"\n"),
            &[("VAULTD_STORAGE_PASSWORD", "from-env")],
            None,
            None,
        )
        .expect("load");
        assert!(config.data_dir().is_none());
        match &config.storage {
            Storage::Postgres(options) => {
                assert_eq!(options.pool_size, 8);
                assert_eq!(
                    options.password.as_ref().map(|p| p.as_str()),
                    Some("from-env")
                );
            }
            Storage::Sled(_) => panic!("sled chosen"),
        }
        let err = error(
            Some("storage_url = \"postgresql://db/v\"\nstorage_pool_size = 0\n"),
            &[],
            None,
            None,
        );
        assert!(err.contains("storage_pool_size"), "{err}");
    }

    #[test]
    fn missing_data_dir_says_where_to_set_it() {
        assert_eq!(
            error(None, &[], None, None),
            "data_dir is required (config, VAULTD_DATA_DIR or --data-dir), or a storage_url"
        );
    }

    #[test]
    fn unreadable_or_malformed_files_name_the_file() {
        let missing = ServerConfig::load(
            Some(Path::new("/nonexistent/vaultd.toml")),
            None,
            Some(PathBuf::from("/d")),
            None,
            env_of(&[]),
        )
        .expect_err("missing file")
        .to_string();
        assert!(
            missing.starts_with("reading config /nonexistent/vaultd.toml: "),
            "{missing}"
        );
        for (text, expected) in [
            ("listen = ", "config "),
            ("lisen = \"127.0.0.1:1\"", "unknown field `lisen`"),
            ("[limits]\nmax_body_bytes = \"big\"", "invalid type"),
            ("tls_disable = \"yes\"", "invalid type"),
        ] {
            let message = error(Some(text), &[], None, Some("/d"));
            assert!(message.starts_with("config "), "{text:?}: {message}");
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }
}

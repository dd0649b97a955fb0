//! `vaultd dev`: one command, nothing to configure. Initialises and unseals itself, keeps its
//! unseal key and root token in the (0700) data dir so a restart over the same dir comes back
//! unsealed, and prints the `export` lines. Never for production: the unseal key sits next to
//! the data it protects.

use crate::StartError;
use crate::crypto::SecretKey;
use crate::state::SharedApp;
use crate::store::sealed::UnsealCredential;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const UNSEAL_KEY_FILE: &str = "dev-unseal-key";
const ROOT_TOKEN_FILE: &str = "dev-root-token";

/// A fresh directory under the system temp dir.
pub fn temp_data_dir() -> Result<PathBuf, StartError> {
    let suffix =
        crate::crypto::hex(&crate::crypto::random_bytes::<6>().map_err(StartError::TempDir)?);
    Ok(std::env::temp_dir().join(format!("vaultd-dev-{suffix}")))
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Initialises (first run) and unseals. Returns the root token to print.
pub async fn bootstrap(
    app: &SharedApp,
    data_dir: &Path,
    root_token: Option<String>,
) -> Result<Zeroizing<String>, StartError> {
    let key_path = data_dir.join(UNSEAL_KEY_FILE);
    let token_path = data_dir.join(ROOT_TOKEN_FILE);
    if let Some(token) = &root_token
        && token.starts_with(crate::tokens::TOKEN_PREFIX)
        && !crate::tokens::well_formed(token)
    {
        return Err(StartError::RootTokenPrefix {
            prefix: crate::tokens::TOKEN_PREFIX,
        });
    }
    let initialized = app.store.is_initialized().await.map_err(StartError::Init)?;
    if !initialized {
        let (output, token) = crate::bootstrap::initialize(app, None, root_token)
            .await
            .map_err(StartError::Init)?
            .ok_or(StartError::InitRace)?;
        let written = |path: &Path| {
            let path = path.display().to_string();
            move |source| StartError::DevFile {
                action: "writing",
                path,
                source,
            }
        };
        write_private(&key_path, B64.encode(output.unseal_key.expose()).as_bytes())
            .map_err(written(&key_path))?;
        write_private(&token_path, token.expose().as_bytes()).map_err(written(&token_path))?;
    } else if root_token.is_some() {
        return Err(StartError::RootTokenOnExistingDir {
            path: data_dir.display().to_string(),
        });
    }
    let key_text = Zeroizing::new(std::fs::read_to_string(&key_path).map_err(|source| {
        StartError::NotDevDataDir {
            data_dir: data_dir.display().to_string(),
            key_file: key_path.display().to_string(),
            source,
        }
    })?);
    let key_bytes = Zeroizing::new(
        B64.decode(key_text.trim())
            .map_err(|_| StartError::DevKeyCorrupt)?,
    );
    let key = SecretKey::from_slice(&key_bytes).ok_or(StartError::DevKeyCorrupt)?;
    app.store
        .unseal(UnsealCredential::Key(key))
        .await
        .map_err(StartError::DevUnseal)?;
    let token = Zeroizing::new(std::fs::read_to_string(&token_path).map_err(|source| {
        StartError::DevFile {
            action: "reading",
            path: token_path.display().to_string(),
            source,
        }
    })?);
    Ok(Zeroizing::new(token.trim().to_owned()))
}

/// Starts the dev OIDC issuer on this server; returns its issuer URL.
pub fn start_issuer(app: &SharedApp, base_url: &str) -> Result<String, StartError> {
    let issuer =
        crate::oidc::dev_issuer::DevIssuer::new(base_url).map_err(StartError::DevIssuer)?;
    let url = issuer.issuer_url.clone();
    app.dev_issuer
        .set(issuer)
        .map_err(|_| StartError::DevIssuerStarted)?;
    Ok(url)
}

/// The document that trusts the dev issuer: role `dev` reads `secret/dev/*`.
pub fn dev_document(issuer_url: &str) -> String {
    format!(
        r#"
[issuers.dev]
issuer = "{issuer_url}"
algorithms = ["ES256"]
max_token_lifetime = "1h"

[roles.dev]
issuer = "dev"
audiences = ["{audience}"]
claims = {{ repository_id = "100", ref = "refs/heads/main" }}
policies = ["dev-read"]
ttl = "15m"
max_ttl = "1h"

[policies.dev-read]
rules = [
  {{ path = "secret/data/dev/*", capabilities = ["read"] }},
  {{ path = "secret/metadata/dev/*", capabilities = ["read", "list"] }},
]
"#,
        audience = crate::oidc::dev_issuer::DEFAULT_AUDIENCE
    )
}

/// Applies `*.toml` from `dir` (if any) together with the dev document. Returns a summary.
pub async fn load_policies(
    app: &SharedApp,
    issuer_url: &str,
    dir: Option<&Path>,
) -> Result<String, StartError> {
    let mut texts = Vec::new();
    if let Some(dir) = dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| StartError::PolicyDir {
                path: dir.display().to_string(),
                source,
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for file in files {
            let failed = |message: String| StartError::PolicyFile {
                path: file.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&file).map_err(|e| failed(e.to_string()))?;
            let document = policies::parse_document(&text).map_err(|e| failed(e.to_string()))?;
            texts.push(document);
        }
    }
    let from_dir = texts.len();
    texts.push(
        policies::parse_document(&dev_document(issuer_url)).map_err(StartError::DevDocument)?,
    );
    let (version, _, document) = app
        .policies
        .apply(texts, false, false)
        .await
        .map_err(StartError::LoadPolicies)?;
    Ok(format!(
        "{from_dir} file(s) from {} + the dev document (version {version}: {} issuers, {} roles, {} policies)",
        dir.map(|d| d.display().to_string())
            .unwrap_or_else(|| "nowhere".into()),
        document.issuers.len(),
        document.roles.len(),
        document.policies.len()
    ))
}

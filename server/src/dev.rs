//! `vaultd dev`: one command, nothing to configure. Initialises and unseals itself, keeps its
//! unseal key and root token in the (0700) data dir so a restart over the same dir comes back
//! unsealed, and prints the `export` lines. Never for production: the unseal key sits next to
//! the data it protects.

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
pub fn temp_data_dir() -> PathBuf {
    let suffix: String = crate::crypto::random_bytes::<6>()
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::env::temp_dir().join(format!("vaultd-dev-{suffix}"))
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
) -> Result<Zeroizing<String>, String> {
    let key_path = data_dir.join(UNSEAL_KEY_FILE);
    let token_path = data_dir.join(ROOT_TOKEN_FILE);
    let initialized = app.store.is_initialized().map_err(|e| e.to_string())?;
    if !initialized {
        let (output, token) = crate::bootstrap::initialize(app, None, root_token)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("store was initialised concurrently")?;
        write_private(&key_path, B64.encode(output.unseal_key.expose()).as_bytes())
            .map_err(|e| format!("writing {}: {e}", key_path.display()))?;
        write_private(&token_path, token.expose().as_bytes())
            .map_err(|e| format!("writing {}: {e}", token_path.display()))?;
    } else if root_token.is_some() {
        return Err(format!(
            "--root-token applies only to a new data dir; {} is already initialised",
            data_dir.display()
        ));
    }
    let key_text = Zeroizing::new(std::fs::read_to_string(&key_path).map_err(|e| {
        format!(
            "{} holds data not created by `vaultd dev` ({}: {e}); use `vaultd server` for it",
            data_dir.display(),
            key_path.display()
        )
    })?);
    let key_bytes = Zeroizing::new(
        B64.decode(key_text.trim())
            .map_err(|_| "dev unseal key file is corrupt")?,
    );
    let key = SecretKey::from_slice(&key_bytes).ok_or("dev unseal key file is corrupt")?;
    app.store
        .unseal(UnsealCredential::Key(key))
        .map_err(|e| format!("dev unseal failed: {e}"))?;
    let token = std::fs::read_to_string(&token_path)
        .map_err(|e| format!("reading {}: {e}", token_path.display()))?;
    Ok(Zeroizing::new(token.trim().to_owned()))
}

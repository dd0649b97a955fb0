//! `vaultctl exec --identity-token ROLE`: an identity token minted by vaultd
//! (`identity/oidc/token/ROLE`) in a 0600 file of a private directory removed when the run
//! ends, and the variables cloud SDKs read to exchange it themselves — no cloud SDK in vaultctl.
//!
//! - AWS (`--aws-role-arn`): `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`,
//!   `AWS_ROLE_SESSION_NAME`.
//! - GCP (`--gcp-audience`): an `external_account` credentials file whose
//!   `credential_source.file` is the token, named by `GOOGLE_APPLICATION_CREDENTIALS` (and
//!   `CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE` for gcloud).
//! - Azure (`--azure-client-id`, `--azure-tenant-id`): `AZURE_FEDERATED_TOKEN_FILE`,
//!   `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`.
//!
//! `VAULTCTL_IDENTITY_TOKEN_FILE` always names the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::client::{Auth, Client, ClientError};
use crate::error::Error;
use crate::secret::Secret;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The vaultd identity role.
    pub role: String,
    /// `--aws-role-arn`.
    pub aws_role_arn: Option<String>,
    /// `--aws-role-session-name`.
    pub aws_role_session_name: Option<String>,
    /// `--gcp-audience`.
    pub gcp_audience: Option<String>,
    /// `--gcp-service-account`.
    pub gcp_service_account: Option<String>,
    /// `--gcp-token-url`.
    pub gcp_token_url: Option<String>,
    /// `--azure-client-id`.
    pub azure_client_id: Option<String>,
    /// `--azure-tenant-id`.
    pub azure_tenant_id: Option<String>,
}

/// The minted token, its files, and the variables that point at them. Dropping it removes the
/// directory.
pub struct IdentityToken {
    /// The token, to mask.
    pub token: Secret,
    /// Variables for the child.
    pub variables: Vec<(String, Secret)>,
    dir: PathBuf,
}

impl std::fmt::Debug for IdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityToken")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for IdentityToken {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn failed(why: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::failed("minting an identity token", why, fix)
}

/// A new directory only this user can enter.
fn private_dir() -> Result<PathBuf, Error> {
    let base = std::env::temp_dir();
    for _ in 0..8 {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| failed(e.to_string(), "retry"))?;
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!("vaultctl-identity-{name}"));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(failed(
                    format!("creating a directory in {}: {e}", base.display()),
                    "check TMPDIR",
                ));
            }
        }
    }
    Err(failed("no free temporary directory name", "check TMPDIR"))
}

/// Writes `content` to a new 0600 file.
fn write_private(path: &Path, content: &[u8]) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| failed(format!("writing {}: {e}", path.display()), "check TMPDIR"))?;
    file.write_all(content)
        .map_err(|e| failed(format!("writing {}: {e}", path.display()), "check TMPDIR"))
}

/// A session name AWS accepts (`[\w+=,.@-]{2,64}`): from the CI run when there is one.
fn session_name(env: &impl Fn(&str) -> Option<String>) -> String {
    let run = env("GITHUB_RUN_ID")
        .or_else(|| env("CI_JOB_ID"))
        .unwrap_or_else(|| std::process::id().to_string());
    let name: String = format!("vaultctl-{run}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(*c))
        .take(64)
        .collect();
    name
}

/// Mints the token and lays out its files and variables.
pub fn obtain(
    client: &Client,
    request: &Request,
    env: impl Fn(&str) -> Option<String>,
) -> Result<IdentityToken, Error> {
    let path = format!("identity/oidc/token/{}", request.role);
    let body = match client.get(&path, Auth::Required) {
        Ok(Some(body)) => body,
        Ok(None) => return Err(failed("empty answer", "check VAULTCTL_ADDR")),
        Err(ClientError::NotFound { .. }) => {
            return Err(failed(
                format!("no identity role {:?}", request.role),
                "check the role (vaultctl's admin: LIST identity/oidc/role)",
            ));
        }
        Err(ClientError::PermissionDenied) => {
            return Err(failed(
                "permission denied",
                format!("the token's policies do not grant read on {path}"),
            ));
        }
        Err(source) => {
            return Err(Error::Request {
                action: format!("minting an identity token of role {}", request.role),
                source,
            });
        }
    };
    let token = body
        .pointer("/data/token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_owned()))
        .ok_or_else(|| {
            failed(
                "the answer has no token",
                "check that vaultd supports identity tokens",
            )
        })?;
    let dir = private_dir()?;
    // From here on, dropping `minted` removes the directory, on every path out.
    let mut minted = IdentityToken {
        token,
        variables: Vec::new(),
        dir,
    };
    let token_file = minted.dir.join("token");
    write_private(&token_file, minted.token.expose().as_bytes())?;
    let file_text = token_file.display().to_string();
    let set = minted_var;
    let mut variables = vec![set("VAULTCTL_IDENTITY_TOKEN_FILE", file_text.clone())];
    if let Some(arn) = &request.aws_role_arn {
        variables.push(set("AWS_WEB_IDENTITY_TOKEN_FILE", file_text.clone()));
        variables.push(set("AWS_ROLE_ARN", arn.clone()));
        let session = request
            .aws_role_session_name
            .clone()
            .unwrap_or_else(|| session_name(&env));
        variables.push(set("AWS_ROLE_SESSION_NAME", session));
    }
    if let Some(audience) = &request.gcp_audience {
        let mut config = json!({
            "type": "external_account",
            "audience": audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": request.gcp_token_url.clone().unwrap_or_else(|| "https://sts.googleapis.com/v1/token".into()),
            "credential_source": { "file": file_text },
        });
        if let Some(account) = &request.gcp_service_account {
            config["service_account_impersonation_url"] = json!(format!(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{account}:generateAccessToken"
            ));
        }
        let config_file = minted.dir.join("gcp-credentials.json");
        write_private(&config_file, config.to_string().as_bytes())?;
        let config_text = config_file.display().to_string();
        variables.push(set("GOOGLE_APPLICATION_CREDENTIALS", config_text.clone()));
        variables.push(set("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", config_text));
    }
    if let Some(client_id) = &request.azure_client_id {
        variables.push(set("AZURE_FEDERATED_TOKEN_FILE", file_text.clone()));
        variables.push(set("AZURE_CLIENT_ID", client_id.clone()));
        if let Some(tenant) = &request.azure_tenant_id {
            variables.push(set("AZURE_TENANT_ID", tenant.clone()));
        }
    }
    minted.variables = variables;
    Ok(minted)
}

fn minted_var(name: &str, value: String) -> (String, Secret) {
    (name.to_owned(), Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_what_aws_accepts() {
        let env = |name: &str| (name == "GITHUB_RUN_ID").then(|| "12345/../x y".to_owned());
        assert_eq!(session_name(&env), "vaultctl-12345..xy");
        let none = |_: &str| None;
        assert!(session_name(&none).starts_with("vaultctl-"));
    }

    #[test]
    fn files_are_private_and_removed_on_drop() {
        let dir = private_dir().expect("dir");
        let file = dir.join("token");
        write_private(&file, b"x").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        assert!(write_private(&file, b"y").is_err(), "never overwrites");
        drop(IdentityToken {
            token: Secret::new("t".into()),
            variables: Vec::new(),
            dir: dir.clone(),
        });
        assert!(!dir.exists());
    }
}

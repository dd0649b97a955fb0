//! The command line: flags and subcommands as clap types. No behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::input::{VersionList, parse_key_value, parse_versions};
use crate::output::FormatArg;
use std::ffi::OsString;

const LONG_ABOUT: &str = "\
Admin CLI for vaultd, a secrets broker for CI/CD pipelines that speaks a subset of \
HashiCorp Vault's HTTP API.

The server address comes from --addr, else VAULTCTL_ADDR, else VAULT_ADDR, else \
http://127.0.0.1:8200. The token comes from VAULTCTL_TOKEN, else VAULT_TOKEN (or --token, \
which puts it in your shell history and the process list: prefer the environment). \
Unseal keys, passphrases and secret values are read from stdin or files, never from \
arguments.

Exit codes:
  0  success
  1  error (one line on stderr: what failed, why, what to do)
  2  usage error; for `vaultctl status`, also: vaultd is sealed";

/// `--version`: the crate version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("VAULTCTL_GIT_COMMIT"),
    ")"
);

/// `vaultctl`: admin commands for vaultd.
#[derive(Debug, Parser)]
#[command(name = "vaultctl", version = VERSION, about = "Admin CLI for vaultd", long_about = LONG_ABOUT)]
pub struct Cli {
    /// Flags that apply to every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Connection and output flags.
#[derive(Args)]
pub struct GlobalArgs {
    /// vaultd's address [env: VAULTCTL_ADDR, then VAULT_ADDR] [default: http://127.0.0.1:8200]
    #[arg(long, global = true, value_name = "URL")]
    pub addr: Option<String>,

    /// Token to authenticate with; prefer the environment [env: VAULTCTL_TOKEN, then VAULT_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Output format: table or json; `env` also takes dotenv, shell, github
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,

    /// PEM file with the CA certificate(s) that signed vaultd's TLS certificate
    /// [env: VAULTCTL_CACERT, then VAULT_CACERT]
    #[arg(long, global = true, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for GlobalArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalArgs")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("format", &self.format)
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show whether vaultd is initialized and sealed (exit code 2 when sealed)
    Status,
    /// Initialize, unseal, seal and rotate keys
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Read and write KV v2 secrets under secret/
    #[command(subcommand)]
    Kv(KvCommand),
    /// Create, look up and revoke tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run a command with secrets in its environment, masked in its output
    ///
    /// Gets a token (VAULTCTL_TOKEN, or the CI's OIDC ID token exchanged with --role), reads
    /// the chosen secrets, runs the command with them as environment variables (credentials
    /// removed), masks every secret value and its encodings in the command's stdout and
    /// stderr, forwards signals, revokes the token it obtained, and exits with the command's
    /// exit code (128+N if it died of signal N).
    Exec(Box<ExecArgs>),
    /// Print the chosen secrets as dotenv, json or shell lines, or append them to $GITHUB_ENV
    Env(SecretArgs),
    /// Copy stdin to stdout, masking the chosen secrets and their encodings
    Mask(SecretArgs),
    /// Apply, inspect, check and test policy-as-code documents
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print a shell completion script: `source <(vaultctl completions bash)`
    ///
    /// bash: add that line to ~/.bashrc; zsh: `vaultctl completions zsh > "${fpath[1]}/_vaultctl"`;
    /// fish: `vaultctl completions fish > ~/.config/fish/completions/vaultctl.fish`;
    /// PowerShell: `vaultctl completions powershell | Out-String | Invoke-Expression`.
    Completions {
        /// bash, zsh, fish or powershell
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Write man pages (vaultctl.1 and one per subcommand) into a directory
    Man {
        /// Where to write them (created if missing)
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Mint an ID token from `vaultd dev`'s built-in issuer (dev servers only; needs root)
    DevToken {
        /// Claim to set or override, e.g. --claim ref=refs/heads/dev (repeatable)
        #[arg(long = "claim", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        claims: Vec<(String, String)>,
        /// Audience [default: vaultctl-dev]
        #[arg(long)]
        audience: Option<String>,
        /// Lifetime, e.g. 5m
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
}

/// The shells `vaultctl completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// GNU bash
    Bash,
    /// Z shell
    Zsh,
    /// fish
    Fish,
    /// PowerShell
    Powershell,
}

/// Which secrets to fetch, and how to get a token for them.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// Role to log in with when no VAULTCTL_TOKEN is set
    #[arg(long, env = "VAULTCTL_ROLE")]
    pub role: Option<String>,
    /// Audience to request from GitHub's ID token service
    #[arg(long, env = "VAULTCTL_AUDIENCE")]
    pub audience: Option<String>,
    /// Read the ID token from this environment variable (GitLab id_tokens:)
    #[arg(long, value_name = "NAME")]
    pub jwt_env: Option<String>,
    /// Inject every key of this KV secret under its own name (repeatable)
    #[arg(long = "secret", value_name = "PATH")]
    pub secrets: Vec<String>,
    /// File of NAME=secret/path#key lines
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Keep only these names (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "NAME,…")]
    pub only: Vec<String>,
}

/// `vaultctl exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Where the credential and the secrets come from.
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// Mint a dynamic credential for the command (repeatable); database/creds/ROLE sets
    /// PGUSER and PGPASSWORD. Revoked when the command ends.
    #[arg(long = "credential", value_name = "PATH")]
    pub credentials: Vec<String>,
    /// Mint an identity token of this vaultd role into a 0600 file removed when the command
    /// ends; VAULTCTL_IDENTITY_TOKEN_FILE names it
    #[arg(long, value_name = "ROLE")]
    pub identity_token: Option<String>,
    /// AWS: the role to assume with the identity token (sets AWS_WEB_IDENTITY_TOKEN_FILE,
    /// AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME)
    #[arg(long, value_name = "ARN", requires = "identity_token")]
    pub aws_role_arn: Option<String>,
    /// AWS: the session name [default: vaultctl-<CI run or job id>]
    #[arg(long, value_name = "NAME", requires = "aws_role_arn")]
    pub aws_role_session_name: Option<String>,
    /// GCP: the workload identity provider's audience
    /// (//iam.googleapis.com/projects/…/providers/…); writes an external_account file named by
    /// GOOGLE_APPLICATION_CREDENTIALS
    #[arg(long, value_name = "AUDIENCE", requires = "identity_token")]
    pub gcp_audience: Option<String>,
    /// GCP: a service account to impersonate with the federated token
    #[arg(long, value_name = "EMAIL", requires = "gcp_audience")]
    pub gcp_service_account: Option<String>,
    /// GCP: the STS token URL [default: https://sts.googleapis.com/v1/token]
    #[arg(long, value_name = "URL", requires = "gcp_audience")]
    pub gcp_token_url: Option<String>,
    /// Azure: the application (client) id of the federated credential (sets
    /// AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID)
    #[arg(long, value_name = "ID", requires = "identity_token")]
    pub azure_client_id: Option<String>,
    /// Azure: the tenant id (sets AZURE_TENANT_ID)
    #[arg(long, value_name = "ID", requires = "azure_client_id")]
    pub azure_tenant_id: Option<String>,
    /// Do not mask the command's output (it still gets the secrets)
    #[arg(long)]
    pub no_mask: bool,
    /// The command and its arguments, after --
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `vaultctl policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate and apply documents atomically (all files together, or nothing)
    Apply {
        /// TOML documents
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Show what would change without changing anything
        #[arg(long)]
        dry_run: bool,
        /// Replace the whole document in force instead of merging by name
        #[arg(long)]
        replace: bool,
    },
    /// List the issuers, roles and policies in force
    List,
    /// Print the document in force (TOML; JSON with --format json)
    Show,
    /// Validate and lint documents offline (no server needed)
    Check {
        /// TOML documents
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Explain whether a token would log in to a role, check by check, and what it could read
    ///
    /// With --jwt, the server verifies a captured ID token (signature, issuer, audience,
    /// times) without logging in or spending its jti, and says for each binding what the role
    /// wants, what the token has, and why a near miss failed. Offline (--file) a token can
    /// only be decoded, with --no-verify. The token itself is never printed. Exit status: 0
    /// when the login would succeed, 1 when it would fail, 2 for usage errors.
    #[command(group(clap::ArgGroup::new("given").required(true).args(["claims", "jwt"])))]
    Test {
        /// Role name
        #[arg(long)]
        role: String,
        /// JSON file with the token's claims
        #[arg(long, value_name = "FILE")]
        claims: Option<PathBuf>,
        /// File holding a captured ID token (`-` reads it from stdin)
        #[arg(long, value_name = "FILE")]
        jwt: Option<PathBuf>,
        /// With --jwt and --file: decode the token without verifying its signature
        #[arg(long, requires = "jwt")]
        no_verify: bool,
        /// Use these documents instead of the server's (offline)
        #[arg(long = "file", value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Remove one issuer, role or policy
    Delete {
        /// issuer, role or policy
        kind: String,
        /// Its name
        name: String,
    },
}

/// `vaultctl operator …`
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialize vaultd: prints the unseal key and the root token, once
    Init {
        /// Also protect the root key with a passphrase read from stdin (one line)
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Unseal vaultd with the unseal key (read from stdin by default) or the passphrase
    Unseal {
        /// Read the unseal key from this file
        #[arg(long, value_name = "FILE", conflicts_with = "passphrase_stdin")]
        key_file: Option<PathBuf>,
        /// Unseal with the passphrase, read from stdin (one line)
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Seal vaultd: it drops its keys and refuses requests until unsealed (needs a token)
    Seal,
    /// Start a new data key version for new writes; old versions stay readable (needs a token)
    Rotate,
}

/// `vaultctl kv …`
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Write a new version of a secret
    ///
    /// Each field is KEY=VALUE, KEY=@FILE (the file's exact content) or KEY=- (stdin up to
    /// EOF, minus one trailing newline; only one field may use it). Values given as
    /// KEY=VALUE end up in the process list and shell history: pass secrets with KEY=- or
    /// KEY=@FILE. Prints the new version.
    Put {
        /// Secret path, e.g. secret/prod/api or prod/api
        path: String,
        /// Fields: KEY=VALUE, KEY=@FILE, KEY=-
        #[arg(value_name = "KEY=VALUE", required = true)]
        data: Vec<String>,
        /// Write only if the current version is N (0: only if the secret does not exist)
        #[arg(long, value_name = "N")]
        cas: Option<u64>,
    },
    /// Read a secret (the latest version unless --version)
    Get {
        /// Secret path, e.g. secret/prod/api or prod/api
        path: String,
        /// Version to read
        #[arg(long, value_name = "N")]
        version: Option<u64>,
        /// Print only this field: strings raw, other values as JSON, then a newline
        #[arg(long, value_name = "KEY")]
        field: Option<String>,
    },
    /// List the keys under a path ("secret/" for the top)
    List {
        /// Folder path, e.g. secret/prod
        #[arg(default_value = "")]
        path: String,
    },
    /// Soft-delete the latest version, or the given versions (undelete brings them back)
    Delete {
        /// Secret path
        path: String,
        /// Versions to delete, e.g. 1,2
        #[arg(long, value_name = "N,…", value_parser = parse_versions)]
        versions: Option<VersionList>,
    },
    /// Restore soft-deleted versions
    Undelete {
        /// Secret path
        path: String,
        /// Versions to restore, e.g. 1,2
        #[arg(long, value_name = "N,…", value_parser = parse_versions, required = true)]
        versions: VersionList,
    },
    /// Destroy versions for good (cannot be undone)
    Destroy {
        /// Secret path
        path: String,
        /// Versions to destroy, e.g. 1,2
        #[arg(long, value_name = "N,…", value_parser = parse_versions, required = true)]
        versions: VersionList,
    },
    /// Read or change a secret's metadata
    #[command(subcommand)]
    Metadata(KvMetadataCommand),
}

/// `vaultctl kv metadata …`
#[derive(Debug, Subcommand)]
pub enum KvMetadataCommand {
    /// Show versions, settings and custom metadata
    Get {
        /// Secret path
        path: String,
    },
    /// Change settings; --custom-metadata replaces the whole custom metadata map
    Put {
        /// Secret path
        path: String,
        /// Keep at most N versions (0: the server's default)
        #[arg(long, value_name = "N")]
        max_versions: Option<u64>,
        /// Require --cas on every write
        #[arg(long, value_name = "true|false")]
        cas_required: Option<bool>,
        /// Custom metadata entry (repeatable)
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
        custom_metadata: Vec<(String, String)>,
    },
    /// Delete the secret with all its versions and metadata (cannot be undone)
    Delete {
        /// Secret path
        path: String,
    },
}

/// `vaultctl token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (prints it: that is the point)
    Create {
        /// Policy to attach (repeatable)
        #[arg(long = "policy", value_name = "NAME")]
        policies: Vec<String>,
        /// Time to live, e.g. 15m or 1h
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Number of uses before the token expires (0: unlimited)
        #[arg(long, value_name = "N")]
        num_uses: Option<u64>,
        /// Name shown in lookups and the audit log
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Metadata entry (repeatable)
        #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
        metadata: Vec<(String, String)>,
    },
    /// Show the current token's properties, or another token's by accessor
    Lookup {
        /// Look up the token with this accessor instead of the current one
        #[arg(long, value_name = "ACCESSOR")]
        accessor: Option<String>,
    },
    /// Revoke a token by accessor, the current token, or a token read from stdin
    #[command(group(
        clap::ArgGroup::new("which").required(true).args(["accessor", "self_", "token_stdin"])
    ))]
    Revoke {
        /// Revoke the token with this accessor
        #[arg(long, value_name = "ACCESSOR")]
        accessor: Option<String>,
        /// Revoke the token in use
        #[arg(long = "self")]
        self_: bool,
        /// Revoke the token read from stdin (one line)
        #[arg(long)]
        token_stdin: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vaultctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&[
            "kv",
            "get",
            "secret/a",
            "--format",
            "json",
            "--addr",
            "http://x:1",
        ])
        .expect("parses");
        assert_eq!(cli.global.format, Some(FormatArg::Json));
        assert_eq!(cli.global.addr.as_deref(), Some("http://x:1"));
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&["kv", "put", "secret/a"]).is_err(), "data required");
        assert!(
            parse(&["kv", "undelete", "secret/a"]).is_err(),
            "versions required"
        );
        assert!(parse(&["kv", "delete", "a", "--versions", "1,x"]).is_err());
        assert!(parse(&["token", "revoke"]).is_err(), "one target required");
        assert!(parse(&["token", "revoke", "--self", "--accessor", "a"]).is_err());
        assert!(
            parse(&[
                "operator",
                "unseal",
                "--key-file",
                "k",
                "--passphrase-stdin"
            ])
            .is_err()
        );
        assert!(parse(&["status", "--format", "yaml"]).is_err());
    }

    #[test]
    fn versions_and_pairs() {
        let cli = parse(&["kv", "destroy", "a", "--versions", "2,1"]).expect("parses");
        match cli.command {
            Command::Kv(KvCommand::Destroy { versions, .. }) => {
                assert_eq!(versions, VersionList(vec![1, 2]));
            }
            other => panic!("unexpected {other:?}"),
        }
        let cli = parse(&[
            "token",
            "create",
            "--policy",
            "a",
            "--policy",
            "b",
            "--metadata",
            "k=v",
        ])
        .expect("parses");
        match cli.command {
            Command::Token(TokenCommand::Create {
                policies, metadata, ..
            }) => {
                assert_eq!(policies, ["a", "b"]);
                assert_eq!(metadata, [("k".to_owned(), "v".to_owned())]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

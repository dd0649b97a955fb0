//! `vaultctl exec`, `env` and `mask`: the pipeline side. [`credential`] gets a token,
//! [`secrets`] resolves what to inject, [`run`] runs the child behind the masker
//! ([`crate::mask`]).

pub mod credential;
pub mod dynamic;
pub mod env_names;
pub mod identity_token;
pub mod run;
pub mod secrets;
pub mod signals;

use std::io::Write;
use std::sync::Arc;

use crate::cli::{ExecArgs, SecretArgs};
use crate::cmd::{Ctx, Outcome};
use crate::config::process_env;
use crate::error::Error;
use crate::mask::MaskSet;
use crate::output::FormatArg;
use crate::secret::Secret;
use credential::{Credential, LoginOptions};
use identity_token::IdentityToken;
use secrets::Injected;

/// Token, secrets and everything that must be masked, fetched before anything runs. Fields
/// drop in order: the identity token's files go, then the credential revokes its token (and
/// with it the leases).
struct Fetched {
    identity: Option<IdentityToken>,
    credential: Credential,
    injected: Vec<Injected>,
    /// Values of minted credentials, to mask (also those only an env file half uses).
    minted: Vec<Secret>,
}

/// What only `exec` may ask for: credentials minted for the run.
#[derive(Default)]
struct Minting {
    credentials: Vec<String>,
    identity: Option<identity_token::Request>,
}

impl Minting {
    fn of(args: &ExecArgs) -> Self {
        Minting {
            credentials: args.credentials.clone(),
            identity: args
                .identity_token
                .clone()
                .map(|role| identity_token::Request {
                    role,
                    aws_role_arn: args.aws_role_arn.clone(),
                    aws_role_session_name: args.aws_role_session_name.clone(),
                    gcp_audience: args.gcp_audience.clone(),
                    gcp_service_account: args.gcp_service_account.clone(),
                    gcp_token_url: args.gcp_token_url.clone(),
                    azure_client_id: args.azure_client_id.clone(),
                    azure_tenant_id: args.azure_tenant_id.clone(),
                }),
        }
    }

    fn any(&self) -> bool {
        !self.credentials.is_empty() || self.identity.is_some()
    }
}

fn fetch(
    ctx: &mut Ctx<'_>,
    args: &SecretArgs,
    minting: Option<&Minting>,
) -> Result<Fetched, Error> {
    let mappings = match &args.env_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::failed(
                    format!("reading {}", path.display()),
                    e.to_string(),
                    "check the --env-file path",
                )
            })?;
            secrets::parse_env_file(&text, &path.display().to_string())?
        }
        None => Vec::new(),
    };
    if args.secrets.is_empty() && mappings.is_empty() && !minting.is_some_and(Minting::any) {
        return Err(Error::failed(
            "choosing secrets",
            "no --secret, --env-file, --credential or --identity-token given",
            "add --secret secret/prod/api or --env-file FILE",
        ));
    }
    let options = LoginOptions {
        role: args.role.clone(),
        audience: args.audience.clone(),
        jwt_env: args.jwt_env.clone(),
    };
    let credential = credential::obtain(&ctx.client, process_env, &options)?;
    if let Some(summary) = &credential.login_summary {
        writeln!(ctx.err, "vaultctl: {summary}")?;
    }
    let only = (!args.only.is_empty()).then_some(args.only.as_slice());
    // On an error the credential is dropped here, which revokes it (and its leases).
    let mut leases = dynamic::Leases::default();
    let mut credential = credential;
    let resolved = secrets::resolve(
        &credential.client,
        &args.secrets,
        &mappings,
        only,
        minting.is_some().then_some(&mut leases),
        minting.map_or(&[][..], |m| m.credentials.as_slice()),
    );
    credential.leases = leases.ids();
    let mut injected = resolved?;
    let minted: Vec<Secret> = leases
        .values()
        .map(|s| Secret::new(s.expose().to_owned()))
        .collect();
    let identity = match minting.and_then(|m| m.identity.as_ref()) {
        Some(request) => {
            let token = identity_token::obtain(&credential.client, request, process_env)?;
            for (name, value) in &token.variables {
                if injected.iter().any(|i| &i.name == name) {
                    return Err(Error::failed(
                        "setting the identity token's variables",
                        format!("{name} is also set by a secret"),
                        "drop it from the secrets, or narrow with --only",
                    ));
                }
                injected.push(Injected {
                    name: name.clone(),
                    value: Secret::new(value.expose().to_owned()),
                });
            }
            Some(token)
        }
        None => None,
    };
    Ok(Fetched {
        identity,
        credential,
        injected,
        minted,
    })
}

/// Builds the mask set: every secret value, the token and the JWT. Warns (by name) about
/// values too short to mask.
fn masks(ctx: &mut Ctx<'_>, fetched: &Fetched) -> Result<Arc<MaskSet>, Error> {
    let values: Vec<&[u8]> = fetched
        .injected
        .iter()
        .map(|i| i.value.expose().as_bytes())
        .chain(
            fetched
                .credential
                .sensitive
                .iter()
                .chain(&fetched.minted)
                .chain(fetched.identity.as_ref().map(|t| &t.token))
                .map(|s| s.expose().as_bytes()),
        )
        .collect();
    let set = MaskSet::new(values);
    let short: Vec<&str> = set
        .too_short()
        .iter()
        .filter_map(|&i| fetched.injected.get(i).map(|inj| inj.name.as_str()))
        .collect();
    if !short.is_empty() {
        writeln!(
            ctx.err,
            "vaultctl: warning: too short to mask (under 4 bytes), injected unmasked: {}",
            short.join(", ")
        )?;
    }
    Ok(Arc::new(set))
}

/// `vaultctl exec`.
pub fn exec(ctx: &mut Ctx<'_>, args: ExecArgs) -> Result<Outcome, Error> {
    if args.command.is_empty() {
        return Err(Error::failed(
            "starting the command",
            "no command given",
            "put the command after --, e.g. vaultctl exec --secret secret/app -- ./deploy.sh",
        ));
    }
    // Caught from here on, so that a SIGINT or SIGTERM during login or fetch does not kill
    // vaultctl with the token alive: it is noticed below, before the command would start.
    let mut signals = run::Signals::install()?;
    let mut fetched = fetch(ctx, &args.secrets, Some(&Minting::of(&args)))?;
    if let Some(signal) = signals.arrived() {
        if let Err(e) = fetched.credential.revoke() {
            let _ = writeln!(ctx.err, "vaultctl: warning: {e}");
        }
        let _ = writeln!(
            ctx.err,
            "vaultctl: interrupted by signal {signal} before the command started; the token was revoked"
        );
        return Ok(Outcome::Exit(u8::try_from(128 + signal).unwrap_or(255)));
    }
    let masks = masks(ctx, &fetched)?;
    ctx.out.flush()?;
    ctx.err.flush()?;
    let mut remove: Vec<String> = credential::CREDENTIAL_VARS
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if let Some(name) = &args.secrets.jwt_env {
        remove.push(name.clone());
    }
    let add: Vec<(String, Secret)> = fetched
        .injected
        .iter()
        .map(|i| (i.name.clone(), Secret::new(i.value.expose().to_owned())))
        .collect();
    let result = run::run(
        run::ChildSpec {
            command: args.command,
            add,
            remove,
            masks: (!args.no_mask).then_some(masks),
        },
        signals,
    );
    if let Err(e) = fetched.credential.revoke() {
        let _ = writeln!(ctx.err, "vaultctl: warning: {e}");
    }
    result.map(Outcome::Exit)
}

fn dotenv_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '`' => out.push_str("\\`"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// `vaultctl env`.
pub fn env(
    ctx: &mut Ctx<'_>,
    args: SecretArgs,
    format: Option<FormatArg>,
) -> Result<Outcome, Error> {
    let mut fetched = fetch(ctx, &args, None)?;
    let result = print_env(ctx, &fetched.injected, format.unwrap_or(FormatArg::Dotenv));
    if let Err(e) = fetched.credential.revoke() {
        let _ = writeln!(ctx.err, "vaultctl: warning: {e}");
    }
    result.map(|()| Outcome::Done)
}

fn print_env(ctx: &mut Ctx<'_>, injected: &[Injected], format: FormatArg) -> Result<(), Error> {
    match format {
        FormatArg::Dotenv | FormatArg::Table => {
            for i in injected {
                writeln!(ctx.out, "{}={}", i.name, dotenv_quote(i.value.expose()))?;
            }
        }
        FormatArg::Shell => {
            for i in injected {
                writeln!(
                    ctx.out,
                    "export {}={}",
                    i.name,
                    shell_quote(i.value.expose())
                )?;
            }
        }
        FormatArg::Json => {
            let map: serde_json::Map<String, serde_json::Value> = injected
                .iter()
                .map(|i| {
                    (
                        i.name.clone(),
                        serde_json::Value::String(i.value.expose().to_owned()),
                    )
                })
                .collect();
            crate::output::write_json(ctx.out, &serde_json::Value::Object(map))?;
        }
        FormatArg::Github => write_github_env(ctx, injected)?,
    }
    Ok(())
}

/// Registers every value (and each line of multi-line values) as a mask, then appends the
/// variables to `$GITHUB_ENV` with a random heredoc delimiter that no value contains.
fn write_github_env(ctx: &mut Ctx<'_>, injected: &[Injected]) -> Result<(), Error> {
    let path = process_env("GITHUB_ENV").ok_or_else(|| {
        Error::failed(
            "writing $GITHUB_ENV",
            "GITHUB_ENV is not set",
            "use --format github only inside a GitHub Actions job",
        )
    })?;
    for i in injected {
        let value = i.value.expose();
        let lines = value.lines().filter(|_| value.contains('\n'));
        for line in std::iter::once(value).chain(lines) {
            let line = line.trim_end_matches('\r');
            if !line.trim().is_empty() {
                let mut command = add_mask_command(line);
                writeln!(ctx.out, "{command}")?;
                zeroize::Zeroize::zeroize(&mut command);
            }
        }
    }
    ctx.out.flush()?;
    let mut text = String::new();
    for i in injected {
        let delimiter = loop {
            let mut bytes = [0u8; 16];
            getrandom_fill(&mut bytes)?;
            let d: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let d = format!("ghadelimiter_{d}");
            if !i.value.expose().contains(&d) {
                break d;
            }
        };
        text.push_str(&format!(
            "{}<<{delimiter}\n{}\n{delimiter}\n",
            i.name,
            i.value.expose()
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| {
            Error::failed(
                "writing $GITHUB_ENV",
                e.to_string(),
                "check the job's GITHUB_ENV",
            )
        })?;
    file.write_all(text.as_bytes())?;
    zeroize::Zeroize::zeroize(&mut text);
    Ok(())
}

/// `::add-mask::VALUE` with the value escaped as the runner's command syntax requires (it
/// unescapes `%25`, `%0D`, `%0A`), so a value with `%` or line breaks registers as itself.
fn add_mask_command(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    out.push_str("::add-mask::");
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(bytes)
        .map_err(|e| Error::failed("making a heredoc delimiter", e.to_string(), "retry"))
}

/// The command's stdin as a masking source.
struct Stdin<'a>(&'a mut dyn std::io::BufRead, fn() -> bool);

impl std::io::Read for Stdin<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl crate::mask::pump::Source for Stdin<'_> {
    fn ready(&self) -> bool {
        (self.1)()
    }
}

/// `vaultctl mask`: stdin → stdout with the chosen secrets masked.
pub fn mask(ctx: &mut Ctx<'_>, args: SecretArgs) -> Result<Outcome, Error> {
    let fetched = fetch(ctx, &args, None)?;
    let masks = masks(ctx, &fetched)?;
    // Dropping the credential revokes it: the filter needs no token.
    drop(fetched);
    let mut stdin = Stdin(ctx.stdin, ctx.stdin_ready);
    crate::mask::pump::pump(&mut stdin, &mut ctx.out, Some(masks))?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_mask_values_are_escaped_as_the_runner_unescapes_them() {
        assert_eq!(add_mask_command("plain"), "::add-mask::plain");
        assert_eq!(add_mask_command("50%off"), "::add-mask::50%25off");
        assert_eq!(add_mask_command("%0A"), "::add-mask::%250A");
        assert_eq!(add_mask_command("a\r\nb\nc"), "::add-mask::a%0D%0Ab%0Ac");
    }

    #[test]
    fn quoting() {
        assert_eq!(dotenv_quote("a\"b$c\nd"), "\"a\\\"b\\$c\\nd\"");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}

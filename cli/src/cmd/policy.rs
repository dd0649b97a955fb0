//! `vaultctl policy apply | list | show | check | test | delete` and `vaultctl dev-token`:
//! policy-as-code against `sys/vaultctl/policy`, with offline checking through the same
//! `policies` crate the server runs.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::cli::PolicyCommand;
use crate::client::Auth;
use crate::cmd::{Ctx, Outcome, data_of};
use crate::error::{Doing, Error};
use crate::input::{Trim, read_line_secret, read_secret_file};
use crate::output::{Format, write_json};
use crate::secret::Secret;

/// Runs one `policy` subcommand.
pub fn run(ctx: &mut Ctx<'_>, command: PolicyCommand) -> Result<Outcome, Error> {
    match command {
        PolicyCommand::Apply {
            files,
            dry_run,
            replace,
        } => apply(ctx, &files, dry_run, replace),
        PolicyCommand::List => list(ctx),
        PolicyCommand::Show => show(ctx),
        PolicyCommand::Check { files } => check(ctx, &files),
        PolicyCommand::Test {
            role,
            claims,
            jwt,
            no_verify,
            files,
        } => {
            let given = match (claims, jwt) {
                (Some(claims), _) => Given::Claims(claims),
                (None, Some(jwt)) => Given::Jwt(jwt),
                (None, None) => return Err(Error::Usage("give --claims or --jwt".into())),
            };
            test(ctx, &role, given, no_verify, &files)
        }
        PolicyCommand::Delete { kind, name } => delete(ctx, &kind, &name),
    }
}

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::failed(
            format!("reading {}", path.display()),
            e.to_string(),
            "check the file path",
        )
    })
}

/// Reads and parses every file, naming the file in errors.
fn load(files: &[PathBuf]) -> Result<Vec<(String, policies::Document)>, Error> {
    files
        .iter()
        .map(|path| {
            let text = read_text(path)?;
            let document = policies::parse_document(&text).map_err(|e| {
                Error::failed(
                    format!("checking {}", path.display()),
                    e.to_string(),
                    "fix the document (see docs/policies.md)",
                )
            })?;
            Ok((text, document))
        })
        .collect()
}

fn print_warnings(ctx: &mut Ctx<'_>, warnings: &[Value]) -> Result<(), Error> {
    for w in warnings {
        writeln!(
            ctx.err,
            "warning [{}] {}: {}",
            w["code"].as_str().unwrap_or(""),
            w["subject"].as_str().unwrap_or(""),
            w["message"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

fn apply(
    ctx: &mut Ctx<'_>,
    files: &[PathBuf],
    dry_run: bool,
    replace: bool,
) -> Result<Outcome, Error> {
    let texts: Vec<String> = load(files)?.into_iter().map(|(text, _)| text).collect();
    let reply = ctx
        .client
        .put(
            "sys/vaultctl/policy",
            Auth::Required,
            &json!({"documents": texts, "dry_run": dry_run, "replace": replace}),
        )
        .doing("applying policy documents")?;
    let body = ctx.body(reply, "applying policy documents")?;
    let data = data_of(&body).clone();
    if ctx.format == Format::Json {
        write_json(ctx.out, &data)?;
        return Ok(Outcome::Done);
    }
    let changes = data["changes"].as_array().cloned().unwrap_or_default();
    if changes.is_empty() {
        writeln!(ctx.out, "no changes (version {})", data["version"])?;
    }
    for c in &changes {
        let sign = match c["action"].as_str() {
            Some("create") => "+",
            Some("delete") => "-",
            _ => "~",
        };
        writeln!(
            ctx.out,
            "{sign} {} {}",
            c["kind"].as_str().unwrap_or(""),
            c["name"].as_str().unwrap_or("")
        )?;
    }
    if dry_run {
        writeln!(ctx.out, "dry run: nothing changed")?;
    } else if !changes.is_empty() {
        writeln!(ctx.out, "applied: version {}", data["version"])?;
    }
    print_warnings(
        ctx,
        data["warnings"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]),
    )?;
    Ok(Outcome::Done)
}

fn current(ctx: &mut Ctx<'_>) -> Result<Value, Error> {
    let reply = ctx
        .client
        .get("sys/vaultctl/policy", Auth::Required)
        .doing("reading the policy document")?;
    let body = ctx.body(reply, "reading the policy document")?;
    Ok(data_of(&body).clone())
}

fn list(ctx: &mut Ctx<'_>) -> Result<Outcome, Error> {
    let data = current(ctx)?;
    if ctx.format == Format::Json {
        let names = json!({"version": data["version"], "issuers": data["issuers"], "roles": data["roles"], "policies": data["policies"]});
        write_json(ctx.out, &names)?;
        return Ok(Outcome::Done);
    }
    writeln!(ctx.out, "version {}", data["version"])?;
    for kind in ["issuers", "roles", "policies"] {
        let names: Vec<&str> = data[kind]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        writeln!(
            ctx.out,
            "{kind}: {}",
            if names.is_empty() {
                "-".to_owned()
            } else {
                names.join(", ")
            }
        )?;
    }
    Ok(Outcome::Done)
}

fn show(ctx: &mut Ctx<'_>) -> Result<Outcome, Error> {
    let data = current(ctx)?;
    if ctx.format == Format::Json {
        write_json(ctx.out, &data["document"])?;
        return Ok(Outcome::Done);
    }
    let document: policies::Document =
        serde_json::from_value(data["document"].clone()).map_err(|e| {
            Error::failed(
                "reading the policy document",
                e.to_string(),
                "check that vaultctl and vaultd versions match",
            )
        })?;
    let text = toml::to_string(&document).map_err(|e| {
        Error::failed(
            "printing the policy document",
            e.to_string(),
            "use --format json",
        )
    })?;
    writeln!(ctx.out, "# version {}\n{text}", data["version"])?;
    Ok(Outcome::Done)
}

fn check(ctx: &mut Ctx<'_>, files: &[PathBuf]) -> Result<Outcome, Error> {
    let merged = merged(files)?;
    merged.validate().map_err(|e| {
        Error::failed(
            "checking the documents together",
            e.to_string(),
            "fix the document (see docs/policies.md)",
        )
    })?;
    let warnings = policies::lint(&merged);
    let as_json: Vec<Value> = warnings
        .iter()
        .map(|w| json!({"code": w.code.as_str(), "subject": w.subject, "message": w.message}))
        .collect();
    if ctx.format == Format::Json {
        write_json(ctx.out, &json!({"valid": true, "warnings": as_json}))?;
    } else {
        writeln!(
            ctx.out,
            "ok: {} issuers, {} roles, {} policies; {} warning(s)",
            merged.issuers.len(),
            merged.roles.len(),
            merged.policies.len(),
            warnings.len()
        )?;
        print_warnings(ctx, &as_json)?;
    }
    Ok(Outcome::Done)
}

/// What `policy test` was given to explain.
enum Given {
    /// A JSON file of claims.
    Claims(PathBuf),
    /// A file (or `-`, stdin) holding a captured ID token.
    Jwt(PathBuf),
}

fn test(
    ctx: &mut Ctx<'_>,
    role: &str,
    given: Given,
    no_verify: bool,
    files: &[PathBuf],
) -> Result<Outcome, Error> {
    let offline = !files.is_empty();
    if no_verify && !offline {
        return Err(Error::Usage(
            "--no-verify applies offline only (with --file); the server always verifies the token"
                .into(),
        ));
    }
    if offline && matches!(given, Given::Jwt(_)) && !no_verify {
        return Err(Error::Usage(
            "offline (--file) the token's signature cannot be checked: add --no-verify to decode \
             it without verifying, or drop --file to let the server verify it"
                .into(),
        ));
    }
    let explanation = match (&given, offline) {
        (Given::Claims(path), false) => {
            let claims = read_claims(path)?;
            server_test(ctx, &json!({"role": role, "claims": claims}))?
        }
        (Given::Jwt(path), false) => {
            let jwt = read_jwt(ctx, path)?;
            server_test(ctx, &json!({"role": role, "jwt": jwt.expose()}))?
        }
        (Given::Claims(path), true) => {
            let document = merged(files)?;
            policies::explain(&document, role, &read_claims(path)?)
        }
        (Given::Jwt(path), true) => {
            let jwt = read_jwt(ctx, path)?;
            let document = merged(files)?;
            offline_token(&document, role, &decode_unverified(jwt.expose())?)
        }
    };
    if ctx.format == Format::Json {
        let value = serde_json::to_value(&explanation)
            .map_err(|e| Error::failed("printing", e.to_string(), "retry"))?;
        write_json(ctx.out, &value)?;
    } else {
        write!(ctx.out, "{explanation}")?;
    }
    if explanation.signature_verified == Some(false) && offline {
        writeln!(
            ctx.err,
            "vaultctl: warning: the token was decoded, NOT verified (--no-verify); only the \
             server can check its signature"
        )?;
    }
    Ok(login_outcome(explanation.can_login))
}

fn read_claims(path: &Path) -> Result<Value, Error> {
    serde_json::from_str(&read_text(path)?).map_err(|e| {
        Error::failed(
            format!("reading {}", path.display()),
            format!("not JSON ({e})"),
            "give the token's claims as a JSON object (or the token itself with --jwt)",
        )
    })
}

/// Reads the token from a file or stdin. It is a live credential until it expires: it stays
/// in a [`Secret`] and no error repeats it.
fn read_jwt(ctx: &mut Ctx<'_>, path: &Path) -> Result<Secret, Error> {
    let what = "ID token";
    let secret = if path.as_os_str() == "-" {
        read_line_secret(ctx.stdin, Trim::Whitespace, what)?
    } else {
        let raw = read_secret_file(path, &format!("reading the {what} from {}", path.display()))?;
        Secret::new(raw.expose().trim().to_owned())
    };
    if secret.expose().is_empty() {
        return Err(Error::failed(
            format!("reading the {what}"),
            "the input is empty",
            "save the token itself (three dot-separated parts) in the file",
        ));
    }
    Ok(secret)
}

/// The payload of a JWT, decoded without any verification (offline `--no-verify`).
fn decode_unverified(jwt: &str) -> Result<Value, Error> {
    use base64::Engine;
    let malformed = |why: &str| {
        Error::failed(
            "decoding the ID token",
            why.to_owned(),
            "give the token as captured (header.payload.signature, base64url)",
        )
    };
    let mut parts = jwt.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| malformed("the payload is not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("the payload is not JSON"))?;
    if !claims.is_object() {
        return Err(malformed("the payload is not a JSON object"));
    }
    Ok(claims)
}

/// Offline: the role's checks and the token's time checks (which need no key), marked
/// unverified.
fn offline_token(
    document: &policies::Document,
    role: &str,
    claims: &Value,
) -> policies::Explanation {
    let explanation = policies::explain(document, role, claims);
    let max_lifetime = document
        .roles
        .get(role)
        .and_then(|r| document.issuers.get(&r.issuer))
        .map_or(policies::issuer::DEFAULT_MAX_TOKEN_LIFETIME, |i| {
            i.max_token_lifetime
        });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let time = policies::time_checks(claims, now, TIME_LEEWAY_SECS, max_lifetime.as_secs());
    explanation.with_token_checks(time, false)
}

/// The clock skew vaultd tolerates on `exp`, `nbf` and `iat` (its `LEEWAY_SECS`).
const TIME_LEEWAY_SECS: u64 = 60;

fn merged(files: &[PathBuf]) -> Result<policies::Document, Error> {
    let mut merged = policies::Document::default();
    for (_, document) in load(files)? {
        merged.merge(document);
    }
    Ok(merged)
}

fn server_test(ctx: &mut Ctx<'_>, body: &Value) -> Result<policies::Explanation, Error> {
    let reply = ctx
        .client
        .put("sys/vaultctl/policy-test", Auth::Required, body)
        .doing("testing against the server's policy document")?;
    let body = ctx.body(reply, "testing the login")?;
    serde_json::from_value(data_of(&body).clone()).map_err(|e| {
        Error::failed(
            "reading the server's explanation",
            e.to_string(),
            "check that vaultctl and vaultd versions match",
        )
    })
}

/// `policy test` exits 0 when the login would succeed and 1 when it would fail, so a script
/// (or a CI check of a policy change) can act on it; usage errors stay 2.
fn login_outcome(can_login: bool) -> Outcome {
    if can_login {
        Outcome::Done
    } else {
        Outcome::Exit(1)
    }
}

fn delete(ctx: &mut Ctx<'_>, kind: &str, name: &str) -> Result<Outcome, Error> {
    ctx.client
        .delete(
            &format!("sys/vaultctl/policy/{kind}/{name}"),
            Auth::Required,
        )
        .doing(format!("deleting {kind} {name}"))?;
    ctx.done(&format!("deleted {kind} {name}"))?;
    Ok(Outcome::Done)
}

/// `vaultctl dev-token`: prints only the JWT, so `export VAULTCTL_JWT=$(vaultctl dev-token)` works.
pub fn dev_token(
    ctx: &mut Ctx<'_>,
    claims: Vec<(String, String)>,
    audience: Option<String>,
    ttl: Option<String>,
) -> Result<Outcome, Error> {
    let claims: serde_json::Map<String, Value> = claims
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut body = json!({ "claims": claims });
    if let Some(aud) = audience {
        body["audience"] = Value::String(aud);
    }
    if let Some(ttl) = ttl {
        body["ttl"] = Value::String(ttl);
    }
    let reply = ctx
        .client
        .put("sys/dev/oidc/token", Auth::Required, &body)
        .doing("minting a dev ID token (is this a `vaultd dev` server, and VAULTCTL_TOKEN its root token?)")?;
    let body = ctx.body(reply, "minting a dev ID token")?;
    let data = data_of(&body);
    if ctx.format == Format::Json {
        write_json(ctx.out, data)?;
    } else {
        writeln!(ctx.out, "{}", data["jwt"].as_str().unwrap_or(""))?;
    }
    Ok(Outcome::Done)
}

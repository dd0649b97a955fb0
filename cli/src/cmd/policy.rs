//! `vaultctl policy apply | list | show | check | test | delete` and `vaultctl dev-token`:
//! policy-as-code against `sys/vaultctl/policy`, with offline checking through the same
//! `policies` crate the server runs.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::cli::PolicyCommand;
use crate::client::Auth;
use crate::cmd::{Ctx, Outcome, data_of};
use crate::error::{Doing, Error};
use crate::output::{Format, write_json};

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
            files,
        } => test(ctx, &role, &claims, &files),
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
    let mut merged = policies::Document::default();
    for (_, document) in load(files)? {
        merged.merge(document);
    }
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

fn test(
    ctx: &mut Ctx<'_>,
    role: &str,
    claims_file: &Path,
    files: &[PathBuf],
) -> Result<Outcome, Error> {
    let claims: Value = serde_json::from_str(&read_text(claims_file)?).map_err(|e| {
        Error::failed(
            format!("reading {}", claims_file.display()),
            format!("not JSON ({e})"),
            "give the token's claims as a JSON object (decode the JWT's middle part)",
        )
    })?;
    if files.is_empty() {
        let reply = ctx
            .client
            .put(
                "sys/vaultctl/policy-test",
                Auth::Required,
                &json!({"role": role, "claims": claims}),
            )
            .doing("testing against the server's policy document")?;
        let body = ctx.body(reply, "testing the claims")?;
        let data = data_of(&body).clone();
        if ctx.format == Format::Json {
            write_json(ctx.out, &data)?;
        } else {
            print_explanation(ctx, &data)?;
        }
        return Ok(login_outcome(data["can_login"].as_bool().unwrap_or(false)));
    }
    let mut merged = policies::Document::default();
    for (_, document) in load(files)? {
        merged.merge(document);
    }
    let explanation = policies::explain(&merged, role, &claims);
    if ctx.format == Format::Json {
        let value = serde_json::to_value(&explanation)
            .map_err(|e| Error::failed("printing", e.to_string(), "retry"))?;
        write_json(ctx.out, &value)?;
    } else {
        writeln!(ctx.out, "{explanation}")?;
    }
    Ok(login_outcome(explanation.can_login))
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

fn print_explanation(ctx: &mut Ctx<'_>, data: &Value) -> Result<(), Error> {
    let ok = data["can_login"].as_bool().unwrap_or(false);
    writeln!(
        ctx.out,
        "role {}: {}",
        data["role"].as_str().unwrap_or(""),
        if ok {
            "login would succeed"
        } else {
            "login would FAIL"
        }
    )?;
    if let Some(failure) = data["failure"].as_str() {
        writeln!(ctx.out, "  failing check: {failure}")?;
    }
    if ok {
        let policies: Vec<&str> = data["policies"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        writeln!(ctx.out, "  policies: {}", policies.join(", "))?;
        for rule in data["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            writeln!(
                ctx.out,
                "  {}  {}  (from {})",
                rule["path"].as_str().unwrap_or(""),
                crate::output::cell(&rule["capabilities"]),
                rule["policy"].as_str().unwrap_or("")
            )?;
        }
    }
    for note in data["notes"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        writeln!(ctx.out, "  note: {}", note.as_str().unwrap_or(""))?;
    }
    Ok(())
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

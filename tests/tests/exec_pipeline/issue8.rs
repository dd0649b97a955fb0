//! Issue 8, items 10–17: structured secrets, wrapped base64, URL and CRLF forms, refused
//! variable names, revocation on every exit path, single signal delivery, `::add-mask::`
//! escaping. Every check for an absent secret first checks that the text around it is there.

use super::*;

const NESTED_PASS: &str = "n3sted-Pa55word!";
const SA_KEY_ID: &str = "8c1e1d2e3f4a5b6c7d8e9f00";
const PEM_LINE: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";

/// A job whose root token can read `secret/prod/<name>` holding `data`.
fn job_with(name: &str, data: serde_json::Value) -> (Job, Vec<(String, String)>) {
    let j = job();
    let root = j.server.root().to_owned();
    let r = j.server.put(
        &format!("secret/data/prod/{name}"),
        Some(&root),
        &json!({ "data": data }).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    (j, vec![("VAULTCTL_TOKEN".to_owned(), root)])
}

/// Asserts that `marker` is in `text` (so the search below is meaningful) and that none of
/// `secrets` is.
fn assert_masked(text: &str, markers: &[&str], secrets: &[&str]) {
    for marker in markers {
        assert!(
            text.contains(marker),
            "{marker:?} missing from output:\n{text}"
        );
    }
    for (index, secret) in secrets.iter().enumerate() {
        assert!(!text.contains(secret), "secret #{index} leaked");
    }
}

#[test]
fn structured_secrets_are_masked_leaf_by_leaf() {
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{PEM_LINE}\n-----END PRIVATE KEY-----\n");
    let sa_key =
        json!({"type": "service_account", "private_key_id": SA_KEY_ID, "private_key": pem})
            .to_string();
    let (j, env) = job_with(
        "structured",
        json!({"db": {"user": "app", "pass": NESTED_PASS}, "SA_KEY": sa_key}),
    );
    let script = r#"
import json, os
db = json.loads(os.environ["db"])
print("pass:", db["pass"])
sa = json.loads(os.environ["SA_KEY"])
print("key id:", sa["private_key_id"])
print("pem:")
print(sa["private_key"])
print("user:", db["user"])
"#;
    let out = j.run(
        &env,
        &[
            "exec",
            "--secret",
            "prod/structured",
            "--",
            "python3",
            "-c",
            script,
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_masked(
        &out.stdout,
        &["pass: ***", "key id: ***", "pem:\n", "user: app"],
        &[NESTED_PASS, SA_KEY_ID, PEM_LINE],
    );
}

/// The characters of `base64(prefix + secret + …)` that only the secret determines.
fn base64_core(prefix_len: usize, secret: &str) -> String {
    use base64::Engine;
    let data = format!("{}{secret}", "x".repeat(prefix_len));
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    encoded[(4 * prefix_len).div_ceil(3)..4 * (prefix_len + secret.len()) / 3].to_owned()
}

#[test]
fn wrapped_base64_is_masked_at_any_column() {
    // 64 bytes: `base64` wraps its encoding over two lines.
    const LONG_KEY: &str = "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0-0123456789abcdefghijklmn";
    let (j, env) = job_with("long", json!({ "K": LONG_KEY }));
    let script = r#"
echo begin-plain; printf %s "$K" | base64
echo begin-openssl; printf %s "$K" | openssl base64 2>/dev/null || printf %s "$K" | base64 -w 64
echo begin-docker; printf '{"auths":{"r":{"auth":"%s"}}}' "$K" | base64 -w 64
echo begin-fold; printf %s "$K" | base64 -w 0 | fold -w 7; echo
echo end-of-output
"#;
    let out = j.run(
        &env,
        &["exec", "--secret", "prod/long", "--", "sh", "-c", script],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    let unwrapped = out.stdout.replace(['\n', '\r'], "");
    assert_masked(
        &unwrapped,
        &[
            "begin-plain",
            "begin-openssl",
            "begin-docker",
            "begin-fold",
            "end-of-output",
        ],
        &[&base64_core(0, LONG_KEY), &base64_core(23, LONG_KEY)],
    );
    assert!(out.stdout.matches("***").count() >= 4, "{}", out.stdout);
}

#[test]
fn url_encodings_that_keep_slash_or_plus_are_masked() {
    let j = job();
    let env = vec![("VAULTCTL_TOKEN".to_owned(), j.server.root().to_owned())];
    let script = r#"
import os, urllib.parse
s = os.environ["DB_PASSWORD"]
print("quote=" + urllib.parse.quote(s) + ";")
print("quote_plus=" + urllib.parse.quote_plus(s) + ";")
print("uri=" + urllib.parse.quote(s, safe=";,/?:@&=+$#!*'()~") + ";")
"#;
    let out = j.run(
        &env,
        &[
            "exec", "--secret", "prod/app", "--", "python3", "-c", script,
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_masked(
        &out.stdout,
        &["quote=***;", "quote_plus=***;", "uri=***;"],
        &["Sup3r%24ecret%22pass/word", "word%2Bwith", "with+spaces"],
    );
}

#[test]
fn multi_line_values_are_masked_through_a_pty_and_crlf() {
    let (j, env) = job_with("lines", json!({ "SHORT_LINES": "ab1\ncd2\nef3" }));
    let inner = format!(
        "{} exec --secret prod/lines -- sh -c 'printf \"pty[%s]\\n\" \"$SHORT_LINES\"'",
        binary("vaultctl").display()
    );
    // `script` gives vaultctl a terminal, so the child writes through a pty (`\n` → `\r\n`).
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env("VAULTCTL_ADDR", &j.server.addr)
        .env("VAULTCTL_TOKEN", &env[0].1);
    let out = run_with_stdin(cmd, b"");
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_masked(&out.stdout, &["pty[***]"], &["ab1", "cd2", "ef3"]);
    // Through pipes, a child that writes `\r\n` itself.
    let out = j.run(
        &env,
        &[
            "exec",
            "--secret",
            "prod/lines",
            "--",
            "python3",
            "-c",
            r#"import os, sys; sys.stdout.write("crlf[" + os.environ["SHORT_LINES"].replace("\n", "\r\n") + "]\n")"#,
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_masked(&out.stdout, &["crlf[***]"], &["ab1", "cd2", "ef3"]);
}

#[test]
fn secrets_cannot_set_names_that_change_how_programs_start() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let payload = format!("touch {}", marker.display());
    let cases: &[(&str, serde_json::Value)] = &[
        (
            "git",
            json!({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.fsmonitor", "GIT_CONFIG_VALUE_0": payload}),
        ),
        ("git-ssh", json!({ "GIT_SSH_COMMAND": payload })),
        ("pager", json!({ "PAGER": payload })),
        (
            "jdk",
            json!({ "JDK_JAVA_OPTIONS": "-javaagent:/tmp/evil.jar" }),
        ),
        ("dotnet", json!({ "DOTNET_STARTUP_HOOKS": "/tmp/evil.dll" })),
        ("gconv", json!({ "GCONV_PATH": "/tmp/evil" })),
        (
            "python",
            json!({ "PYTHONWARNINGS": "ignore::evil.Warning" }),
        ),
        ("zsh", json!({ "ZDOTDIR": "/tmp/evil" })),
        ("bash-prompt", json!({ "PROMPT_COMMAND": payload })),
        ("xtrace", json!({ "PS4": "$(touch /tmp/evil)" })),
        ("npm", json!({ "npm_config_script_shell": "/tmp/evil" })),
        (
            "terraform",
            json!({ "TF_CLI_ARGS_plan": "-var-file=/tmp/evil.tfvars" }),
        ),
        ("proxy", json!({ "https_proxy": "http://127.0.0.1:9" })),
        ("ca", json!({ "SSL_CERT_FILE": "/tmp/evil.pem" })),
    ];
    for (name, data) in cases {
        let (j, env) = job_with(name, data.clone());
        let out = j.run(
            &env,
            &[
                "exec",
                "--secret",
                &format!("prod/{name}"),
                "--",
                "sh",
                "-c",
                &payload,
            ],
        );
        assert_eq!(out.status, Some(1), "{name}: {out:?}");
        assert!(out.stderr.contains("--env-file"), "{name}: {}", out.stderr);
        assert!(
            !out.stderr.contains("injected unmasked"),
            "{name}: {}",
            out.stderr
        );
        assert!(!marker.exists(), "{name}: the command ran");
    }
    // The deliberate opt-in: an env file maps the name explicitly.
    let (j, env) = job_with("pager-ok", json!({ "PAGER": "cat" }));
    let env_file = tmp.path().join("pager.env");
    std::fs::write(&env_file, "PAGER=prod/pager-ok#PAGER\n").unwrap();
    let out = j.run(
        &env,
        &[
            "exec",
            "--env-file",
            env_file.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo \"pager=$PAGER\"",
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("pager=cat"), "{}", out.stdout);
}

/// Tokens the server holds, from its metrics.
fn active_tokens(j: &Job) -> f64 {
    let r = j
        .server
        .get("sys/metrics?format=prometheus", Some(j.server.root()));
    assert_eq!(r.status, 200, "{}", r.raw);
    r.raw
        .lines()
        .find(|line| line.contains("active_tokens") && !line.starts_with('#'))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no active_tokens in {}", r.raw))
}

fn github_login_env(j: &Job) -> Vec<(String, String)> {
    let mut env = j.github_env();
    env.push(("VAULTCTL_AUDIENCE".into(), AUD.into()));
    env
}

#[test]
fn token_is_revoked_when_stderr_cannot_be_written() {
    let j = job();
    let before = active_tokens(&j);
    let env = github_login_env(&j);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut cmd = j.vaultctl(
        &env,
        &[
            "exec",
            "--role",
            "gh-deploy",
            "--secret",
            "prod/app",
            "--",
            "true",
        ],
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    cmd.stdout(std::process::Stdio::null()).stderr(full);
    let status = cmd.status().unwrap();
    assert_ne!(status.code(), Some(0), "a failed write is a failure");
    assert_eq!(active_tokens(&j), before, "the token outlived vaultctl");
    // The same login with a writable stderr does leave a token until exec ends: the count
    // above would have seen it.
    let out = j.run(
        &github_login_env(&j),
        &[
            "exec",
            "--role",
            "gh-deploy",
            "--secret",
            "prod/app",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_revoked(&j, &accessor_of(&out));
}

#[test]
fn token_is_revoked_when_stdout_cannot_be_written() {
    let j = job();
    let env = github_login_env(&j);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut cmd = j.vaultctl(
        &env,
        &[
            "exec",
            "--role",
            "gh-deploy",
            "--secret",
            "prod/app",
            "--",
            "sh",
            "-c",
            "echo hello; echo more",
        ],
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    cmd.stdout(full).stderr(std::process::Stdio::piped());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let accessor = accessor_of(&Output {
        status: out.status.code(),
        stdout: String::new(),
        stderr: stderr.into_owned(),
    });
    assert_revoked(&j, &accessor);
}

#[test]
fn token_is_revoked_when_a_secret_is_missing_or_the_command_cannot_start() {
    let j = job();
    let env = github_login_env(&j);
    for (case, args) in [
        (
            "missing secret",
            vec![
                "--secret",
                "prod/app",
                "--secret",
                "prod/nope",
                "--",
                "true",
            ],
        ),
        (
            "denied secret",
            vec!["--secret", "prod/other", "--", "true"],
        ),
        (
            "cannot spawn",
            vec!["--secret", "prod/app", "--", "/nonexistent/deploy.sh"],
        ),
    ] {
        let mut full = vec!["exec", "--role", "gh-deploy"];
        full.extend(args);
        let out = j.run(&env, &full);
        assert_eq!(out.status, Some(1), "{case}: {out:?}");
        assert_revoked(&j, &accessor_of(&out));
    }
}

#[test]
fn token_is_revoked_on_sigterm_during_fetch() {
    let server = Server::dev();
    let root = server.root().to_owned();
    // Many secrets, so that fetching them takes a while after the login line appears.
    let paths: Vec<String> = (0..300).map(|i| format!("dev/many/s{i}")).collect();
    for (i, path) in paths.iter().enumerate() {
        server.put(
            &format!("secret/data/{path}"),
            Some(&root),
            &json!({"data": {format!("K{i}"): format!("value-number-{i}")}}).to_string(),
        );
    }
    let mut cmd = Command::new(binary("vaultctl"));
    cmd.args(["dev-token"])
        .env("VAULTCTL_ADDR", &server.addr)
        .env("VAULTCTL_TOKEN", &root);
    let jwt = run_with_stdin(cmd, b"").stdout.trim().to_owned();
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let mut args = vec!["exec".to_owned(), "--role".into(), "dev".into()];
    for path in &paths {
        args.push("--secret".into());
        args.push(path.clone());
    }
    args.extend(["--".into(), "touch".into(), marker.display().to_string()]);
    let mut cmd = Command::new(binary("vaultctl"));
    cmd.args(&args)
        .env_remove("VAULTCTL_TOKEN")
        .env_remove("VAULT_TOKEN")
        .env("VAULTCTL_ADDR", &server.addr)
        .env("VAULTCTL_JWT", &jwt)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    use std::io::Read;
    while !String::from_utf8_lossy(&seen).contains("logged in") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "no login line: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    stderr.read_to_end(&mut seen).unwrap();
    let stderr = String::from_utf8_lossy(&seen).into_owned();
    assert_eq!(status.code(), Some(128 + 15), "{stderr}");
    assert!(!marker.exists(), "the command started after SIGTERM");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let accessor = accessor_of(&Output {
        status: status.code(),
        stdout: String::new(),
        stderr,
    });
    let r = server.put(
        "auth/token/lookup-accessor",
        Some(&root),
        &json!({ "accessor": accessor }).to_string(),
    );
    assert_eq!(r.status, 400, "token still alive: {}", r.raw);
}

#[test]
fn github_env_escapes_add_mask_values() {
    let (j, mut env) = job_with(
        "percent",
        json!({"DISCOUNT": "save-50%-now%0A", "CERT": "first-line\r\nsecond-line"}),
    );
    let tmp = tempfile::tempdir().unwrap();
    let github_env = tmp.path().join("github_env");
    std::fs::write(&github_env, "").unwrap();
    env.push(("GITHUB_ENV".into(), github_env.to_str().unwrap().into()));
    let out = j.run(
        &env,
        &["env", "--secret", "prod/percent", "--format", "github"],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    for want in [
        "::add-mask::save-50%25-now%250A",
        "::add-mask::first-line%0D%0Asecond-line",
        "::add-mask::first-line",
        "::add-mask::second-line",
    ] {
        assert!(
            lines.contains(&want),
            "{want} missing from:\n{}",
            out.stdout
        );
    }
    assert!(
        lines.iter().all(|line| line.starts_with("::add-mask::")),
        "a value broke out of its command: {}",
        out.stdout
    );
}

/// A child that counts SIGTERM and SIGINT deliveries and, a second after the first, prints
/// the count. Its marker ends in `:` so that no masking hold-back can delay it.
const COUNTING_CHILD: &str = r#"
import signal, sys, time
n = 0
def count(signum, frame):
    global n
    n += 1
signal.signal(signal.SIGTERM, count)
signal.signal(signal.SIGINT, count)
print("ready:", flush=True)
while n == 0:
    time.sleep(0.01)
time.sleep(1.0)
print("deliveries: %d;" % n, flush=True)
"#;

/// Runs `cmd` (vaultctl exec of the counting child, possibly wrapped), calls `send` with
/// vaultctl's pid once the child is ready, and returns the child's output.
fn deliveries(mut cmd: Command, send: impl FnOnce(u32)) -> String {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "ready:");
    send(child.id());
    let mut rest = String::new();
    use std::io::Read;
    stdout.read_to_string(&mut rest).unwrap();
    child.wait().unwrap();
    rest
}

fn counting_exec(j: &Job, wrapper: &[&str]) -> Command {
    let vaultctl = binary("vaultctl");
    let mut args: Vec<&str> = wrapper.to_vec();
    args.extend([
        vaultctl.to_str().unwrap(),
        "exec",
        "--secret",
        "prod/app",
        "--",
        "python3",
        "-c",
        COUNTING_CHILD,
    ]);
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VAULTCTL_ADDR", &j.server.addr)
        .env("VAULTCTL_TOKEN", j.server.root());
    cmd
}

#[test]
fn a_signal_to_the_process_group_reaches_the_child_once() {
    let j = job();
    // `setsid` makes vaultctl the leader of a new group, as a CI agent's job would be.
    let out = deliveries(counting_exec(&j, &["setsid"]), |pid| {
        let status = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status()
            .unwrap();
        assert!(status.success());
    });
    assert!(out.contains("deliveries: 1;"), "{out}");
}

#[test]
fn timeout_interrupts_the_child_once() {
    let j = job();
    let out = deliveries(counting_exec(&j, &["timeout", "-s", "INT", "3"]), |_| {});
    assert!(out.contains("deliveries: 1;"), "{out}");
}

#[test]
fn a_signal_to_vaultctl_alone_is_passed_on_once() {
    let j = job();
    let out = deliveries(counting_exec(&j, &[]), |pid| {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    });
    assert!(out.contains("deliveries: 1;"), "{out}");
}

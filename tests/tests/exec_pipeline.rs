//! `vaultctl exec`, `env` and `mask` end to end: simulated GitHub Actions and GitLab CI jobs
//! against a real vaultd and a real test issuer. Scripts print their secrets raw and encoded;
//! the captured output must hold none of them.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::issuer::{GITHUB_REQUEST_TOKEN, TestIssuer};
use e2e::{Output, Server, binary, run_with_stdin};
use serde_json::json;
use std::process::Command;

const AUD: &str = "https://vault.example.com";
const DB_PASSWORD: &str = "Sup3r$ecret\"pass/word+with spaces&more";
const API_KEY: &str = "ak_live_0123456789abcdef";
const TLS_KEY: &str = "-----BEGIN KEY-----\nline-one-of-key\nline-two-of-key\n-----END KEY-----";

fn document(issuer_url: &str) -> String {
    format!(
        r#"
[issuers.ci]
issuer = "{issuer_url}"
algorithms = ["RS256"]

[roles.gh-deploy]
issuer = "ci"
audiences = ["{AUD}"]
claims = {{ repository_id = "74", ref = "refs/heads/main", event_name = "push" }}
policies = ["app-read"]

[roles.gl-deploy]
issuer = "ci"
audiences = ["{AUD}"]
claims = {{ project_id = "42", ref_protected = "true" }}
policies = ["app-read"]

[policies.app-read]
rules = [{{ path = "secret/data/prod/app", capabilities = ["read"] }}, {{ path = "secret/data/prod/tls", capabilities = ["read"] }}]
"#
    )
}

struct Job {
    server: Server,
    issuer: TestIssuer,
}

fn job() -> Job {
    let issuer = TestIssuer::start();
    issuer.set_github_claims(issuer.github_claims(AUD, "acme/api", "74"));
    let server = Server::dev();
    let root = server.root().to_owned();
    let r = server.put(
        "sys/vaultctl/policy",
        Some(&root),
        &json!({"documents": [document(&issuer.url)]}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let r = server.put(
        "secret/data/prod/app",
        Some(&root),
        &json!({"data": {"DB_PASSWORD": DB_PASSWORD, "API_KEY": API_KEY, "PIN": "123"}})
            .to_string(),
    );
    assert_eq!(r.status, 200);
    server.put(
        "secret/data/prod/tls",
        Some(&root),
        &json!({"data": {"TLS_KEY": TLS_KEY}}).to_string(),
    );
    server.put(
        "secret/data/prod/other",
        Some(&root),
        r#"{"data":{"X":"forbidden-value"}}"#,
    );
    Job { server, issuer }
}

impl Job {
    /// `vaultctl` with a clean environment plus `env`.
    fn vaultctl(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = Command::new(binary("vaultctl"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("VAULTCTL_ADDR", &self.server.addr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    fn github_env(&self) -> Vec<(String, String)> {
        vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
                self.issuer.github_request_url(),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
                GITHUB_REQUEST_TOKEN.into(),
            ),
        ]
    }

    fn run(&self, env: &[(String, String)], args: &[&str]) -> Output {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_with_stdin(self.vaultctl(&env, args), b"")
    }
}

/// Reads `stream` until `needle` has appeared, failing if the stream ends first.
fn read_until(stream: &mut impl std::io::Read, needle: &str) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended before {needle:?} appeared");
        seen.extend_from_slice(&buf[..n]);
    }
}

/// A script that prints its secrets in every way a careless deploy script might.
const LEAKY_SCRIPT: &str = r#"
import base64, json, os, sys, time, urllib.parse, shlex
for name in ["DB_PASSWORD", "API_KEY", "TLS_KEY"]:
    s = os.environ[name]
    b = s.encode()
    print("raw:", s)
    print("b64:", base64.b64encode(b).decode())
    print("b64url:", base64.urlsafe_b64encode(b).decode().rstrip("="))
    print("b64 shifted:", base64.b64encode(b"x" + b + b"yz").decode())
    print("b64 shifted2:", base64.b64encode(b"xy" + b).decode())
    print("json:", json.dumps({"v": s}))
    print("url:", urllib.parse.quote(s, safe=""))
    print("url+:", urllib.parse.quote_plus(s))
    print("shell:", shlex.quote(s))
    sys.stderr.write("stderr raw: " + s + "\n")
    sys.stderr.flush()
    for ch in s:                      # one write per byte
        sys.stdout.write(ch)
        sys.stdout.flush()
    print()
print("token present:", "VAULTCTL_TOKEN" in os.environ or "ACTIONS_ID_TOKEN_REQUEST_TOKEN" in os.environ)
print("PIN:", os.environ["PIN"])
print("done")
"#;

fn forbidden() -> Vec<String> {
    use base64::Engine;
    let mut v = vec![
        DB_PASSWORD.to_owned(),
        API_KEY.to_owned(),
        "line-one-of-key".into(),
        "line-two-of-key".into(),
    ];
    for s in [DB_PASSWORD, API_KEY] {
        v.push(
            base64::engine::general_purpose::STANDARD
                .encode(s)
                .trim_end_matches('=')
                .to_owned(),
        );
        v.push(
            serde_json::to_string(s)
                .unwrap()
                .trim_matches('"')
                .to_owned(),
        );
    }
    v.push("Sup3r%24ecret".into());
    v.push("ecret\\\"pass".into());
    v
}

fn assert_clean(out: &Output) {
    for needle in forbidden() {
        assert!(
            !out.stdout.contains(&needle),
            "stdout leaks {needle:?}:\n{}",
            out.stdout
        );
        assert!(
            !out.stderr.contains(&needle),
            "stderr leaks {needle:?}:\n{}",
            out.stderr
        );
    }
}

fn accessor_of(out: &Output) -> String {
    let at = out
        .stderr
        .find("accessor ")
        .expect("login summary on stderr")
        + "accessor ".len();
    out.stderr[at..]
        .split([',', ' '])
        .next()
        .unwrap()
        .to_owned()
}

fn assert_revoked(job: &Job, accessor: &str) {
    let r = job.server.put(
        "auth/token/lookup-accessor",
        Some(job.server.root()),
        &json!({"accessor": accessor}).to_string(),
    );
    assert_eq!(r.status, 400, "token still alive after exec: {}", r.raw);
}

#[test]
fn github_actions_job_gets_its_secrets_and_leaks_none() {
    let j = job();
    let mut env = j.github_env();
    env.push(("VAULTCTL_AUDIENCE".into(), AUD.into()));
    let out = j.run(
        &env,
        &[
            "exec",
            "--role",
            "gh-deploy",
            "--secret",
            "secret/prod/app",
            "--secret",
            "prod/tls",
            "--",
            "python3",
            "-c",
            LEAKY_SCRIPT,
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("done"), "{}", out.stdout);
    assert!(out.stdout.contains("raw: ***"), "{}", out.stdout);
    assert!(
        out.stdout.contains("token present: False"),
        "credentials reached the child: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("PIN: 123"),
        "short values are injected unmasked"
    );
    assert!(
        out.stderr.contains("PIN"),
        "short value warning names the key: {}",
        out.stderr
    );
    assert!(out.stderr.contains("stderr raw: ***"), "{}", out.stderr);
    assert_clean(&out);
    assert_revoked(&j, &accessor_of(&out));
}

#[test]
fn gitlab_job_with_id_tokens_variable() {
    let j = job();
    let jwt = j
        .issuer
        .sign("rsa1", &j.issuer.gitlab_claims(AUD, "group/web", "42"));
    let env = vec![
        ("GITLAB_CI".to_owned(), "true".to_owned()),
        ("VAULTCTL_ID_TOKEN".to_owned(), jwt.clone()),
    ];
    let out = j.run(
        &env,
        &[
            "exec",
            "--role",
            "gl-deploy",
            "--secret",
            "prod/app",
            "--secret",
            "prod/tls",
            "--",
            "python3",
            "-c",
            LEAKY_SCRIPT,
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_clean(&out);
    assert!(!out.stdout.contains(&jwt) && !out.stderr.contains(&jwt));
    assert_revoked(&j, &accessor_of(&out));

    // --jwt-env names another variable.
    let jwt2 = j
        .issuer
        .sign("rsa1", &j.issuer.gitlab_claims(AUD, "group/web", "42"));
    let env = vec![("MY_TOKEN".to_owned(), jwt2)];
    let out = j.run(
        &env,
        &[
            "exec",
            "--role",
            "gl-deploy",
            "--jwt-env",
            "MY_TOKEN",
            "--secret",
            "prod/app",
            "--",
            "sh",
            "-c",
            "echo \"[$MY_TOKEN]\"",
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("[]"),
        "the JWT variable reached the child: {}",
        out.stdout
    );
}

#[test]
fn exit_codes_and_signals_pass_through() {
    let j = job();
    let root = j.server.root().to_owned();
    let env = vec![("VAULTCTL_TOKEN".to_owned(), root.clone())];
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("kill -TERM $$", 128 + 15),
        ("kill -KILL $$", 128 + 9),
    ] {
        let out = j.run(
            &env,
            &["exec", "--secret", "prod/app", "--", "sh", "-c", script],
        );
        assert_eq!(out.status, Some(want), "{script}: {out:?}");
    }
    // A supplied token is not revoked.
    assert_eq!(
        j.server.get("auth/token/lookup-self", Some(&root)).status,
        200
    );

    // SIGTERM to vaultctl reaches the child, whose exit code comes back.
    let mut cmd = j.vaultctl(
        &[("VAULTCTL_TOKEN", &root)],
        &[
            "exec",
            "--secret",
            "prod/app",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "ready");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    use std::io::Read;
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("got-term"), "{rest}");
    assert_eq!(status.code(), Some(7));
}

#[test]
fn partial_lines_are_not_held_back() {
    let j = job();
    let root = j.server.root().to_owned();
    let mut cmd = j.vaultctl(
        &[("VAULTCTL_TOKEN", &root)],
        &[
            "exec",
            "--secret",
            "prod/app",
            "--",
            "sh",
            "-c",
            "printf 'progress: 50%%'; sleep 3; printf ' done\\n'",
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "progress: 50%");
    // The partial line arrived while the child was still sleeping.
    assert!(
        child.try_wait().unwrap().is_none(),
        "partial line only appeared after the child ended"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    child.wait().unwrap();
}

#[test]
fn failures_before_the_command_never_start_it() {
    let j = job();
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let bad_env = tmp.path().join("bad.env");
    std::fs::write(&bad_env, "GOOD=prod/app#API_KEY\nthis line is broken\n").unwrap();
    let dup_env = tmp.path().join("dup.env");
    std::fs::write(&dup_env, "API_KEY=prod/app#DB_PASSWORD\n").unwrap();
    let wrong_repo = {
        let jwt = j
            .issuer
            .sign("rsa1", &j.issuer.github_claims(AUD, "evil/api", "666"));
        vec![("VAULTCTL_JWT".to_owned(), jwt)]
    };
    let root = vec![("VAULTCTL_TOKEN".to_owned(), j.server.root().to_owned())];
    let gh_no_perm = vec![("GITHUB_ACTIONS".to_owned(), "true".to_owned())];
    type Case<'a> = (&'a str, Vec<(String, String)>, Vec<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "no credential",
            vec![],
            vec!["exec", "--secret", "prod/app", "--", "sh", "-c", &touch],
            "VAULTCTL_TOKEN",
        ),
        (
            "github without id-token permission",
            gh_no_perm,
            vec![
                "exec",
                "--role",
                "gh-deploy",
                "--secret",
                "prod/app",
                "--",
                "sh",
                "-c",
                &touch,
            ],
            "id-token: write",
        ),
        (
            "no role",
            wrong_repo.clone(),
            vec!["exec", "--secret", "prod/app", "--", "sh", "-c", &touch],
            "--role",
        ),
        (
            "login denied",
            wrong_repo,
            vec![
                "exec",
                "--role",
                "gh-deploy",
                "--secret",
                "prod/app",
                "--",
                "sh",
                "-c",
                &touch,
            ],
            "repository_id",
        ),
        (
            "missing secret",
            root.clone(),
            vec!["exec", "--secret", "prod/nope", "--", "sh", "-c", &touch],
            "prod/nope",
        ),
        (
            "missing key",
            root.clone(),
            vec![
                "exec",
                "--env-file",
                dup_env.to_str().unwrap(),
                "--only",
                "NOPE",
                "--",
                "sh",
                "-c",
                &touch,
            ],
            "NOPE",
        ),
        (
            "duplicate name",
            root.clone(),
            vec![
                "exec",
                "--secret",
                "prod/app",
                "--env-file",
                dup_env.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &touch,
            ],
            "API_KEY",
        ),
        (
            "bad env file",
            root.clone(),
            vec![
                "exec",
                "--env-file",
                bad_env.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &touch,
            ],
            "line 2",
        ),
        (
            "no secrets chosen",
            root.clone(),
            vec!["exec", "--", "sh", "-c", &touch],
            "--secret",
        ),
        (
            "empty command",
            root.clone(),
            vec!["exec", "--secret", "prod/app"],
            "command",
        ),
        (
            "command not found",
            root.clone(),
            vec![
                "exec",
                "--secret",
                "prod/app",
                "--",
                "/nonexistent/deploy.sh",
            ],
            "not found",
        ),
        (
            "unreachable broker",
            vec![
                ("VAULTCTL_TOKEN".to_owned(), "x".to_owned()),
                ("VAULTCTL_ADDR".to_owned(), "http://127.0.0.1:9".to_owned()),
            ],
            vec!["exec", "--secret", "prod/app", "--", "sh", "-c", &touch],
            "VAULTCTL_ADDR",
        ),
    ];
    for (name, env, args, want) in cases {
        let out = j.run(&env, &args);
        assert_ne!(out.status, Some(0), "{name}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{name}: expected {want:?} in {}",
            out.stderr
        );
        let errors = out
            .stderr
            .lines()
            .filter(|l| !l.starts_with("vaultctl: warning:"))
            .count();
        assert_eq!(errors, 1, "{name}: one line please: {}", out.stderr);
        assert!(!marker.exists(), "{name}: the command ran");
    }
    // A denied path names the path.
    let jwt = j
        .issuer
        .sign("rsa1", &j.issuer.github_claims(AUD, "acme/api", "74"));
    let out = j.run(
        &[("VAULTCTL_JWT".to_owned(), jwt)],
        &[
            "exec",
            "--role",
            "gh-deploy",
            "--secret",
            "prod/other",
            "--",
            "sh",
            "-c",
            &touch,
        ],
    );
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("prod/other") && out.stderr.contains("permission denied"),
        "{}",
        out.stderr
    );
    assert!(!marker.exists());
}

#[test]
fn env_formats_and_github_env() {
    let j = job();
    let root = vec![("VAULTCTL_TOKEN".to_owned(), j.server.root().to_owned())];
    let out = j.run(
        &root,
        &[
            "env",
            "--secret",
            "prod/app",
            "--only",
            "API_KEY,DB_PASSWORD",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["DB_PASSWORD"], DB_PASSWORD);
    assert!(v.get("PIN").is_none());

    let shell = j.run(&root, &["env", "--secret", "prod/app", "--format", "shell"]);
    let eval = Command::new("sh")
        .args([
            "-c",
            &format!("{}\nprintf '%s' \"$DB_PASSWORD\"", shell.stdout),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&eval.stdout), DB_PASSWORD);

    let dotenv = j.run(&root, &["env", "--secret", "prod/tls"]);
    assert!(dotenv.stdout.starts_with("TLS_KEY=\""), "{}", dotenv.stdout);
    assert_eq!(dotenv.stdout.lines().count(), 1);

    let tmp = tempfile::tempdir().unwrap();
    let github_env = tmp.path().join("github_env");
    std::fs::write(&github_env, "EXISTING=1\n").unwrap();
    let mut env = root.clone();
    env.push(("GITHUB_ENV".into(), github_env.to_str().unwrap().into()));
    let out = j.run(
        &env,
        &[
            "env", "--secret", "prod/tls", "--secret", "prod/app", "--format", "github",
        ],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("::add-mask::line-one-of-key"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!("::add-mask::{API_KEY}")));
    let written = std::fs::read_to_string(&github_env).unwrap();
    assert!(written.starts_with("EXISTING=1\n"));
    assert!(written.contains("TLS_KEY<<ghadelimiter_"));
    assert!(written.contains(TLS_KEY));
    assert_eq!(
        j.run(
            &root,
            &["env", "--secret", "prod/app", "--format", "github"]
        )
        .status,
        Some(1),
        "needs GITHUB_ENV"
    );
    assert_eq!(
        j.run(&root, &["kv", "get", "prod/app", "--format", "dotenv"])
            .status,
        Some(1)
    );
}

#[test]
fn mask_filter() {
    let j = job();
    let mut cmd = j.vaultctl(
        &[("VAULTCTL_TOKEN", j.server.root())],
        &["mask", "--secret", "prod/app"],
    );
    cmd.env("X", "1");
    let input = format!("before {API_KEY} after\nno secret here\n");
    let out = run_with_stdin(cmd, input.as_bytes());
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_eq!(out.stdout, "before *** after\nno secret here\n");
}

#[test]
fn dev_token_and_exec_against_vaultd_dev() {
    let server = Server::dev();
    let root = server.root().to_owned();
    server.put(
        "secret/data/dev/app",
        Some(&root),
        r#"{"data":{"GREETING":"hello-from-vault"}}"#,
    );
    let mut cmd = Command::new(binary("vaultctl"));
    cmd.args(["dev-token"])
        .env("VAULTCTL_ADDR", &server.addr)
        .env("VAULTCTL_TOKEN", &root);
    let jwt = run_with_stdin(cmd, b"").stdout.trim().to_owned();
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    let mut cmd = Command::new(binary("vaultctl"));
    cmd.args([
        "exec",
        "--role",
        "dev",
        "--secret",
        "dev/app",
        "--",
        "sh",
        "-c",
        "echo \"len=${#GREETING}\"; echo $GREETING",
    ])
    .env_remove("VAULTCTL_TOKEN")
    .env_remove("VAULT_TOKEN")
    .env("VAULTCTL_ADDR", &server.addr)
    .env("VAULTCTL_JWT", &jwt);
    let out = run_with_stdin(cmd, b"");
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("len=16"), "{}", out.stdout);
    assert!(
        out.stdout.contains("***") && !out.stdout.contains("hello-from-vault"),
        "{}",
        out.stdout
    );
}

#[test]
fn secrets_cannot_set_loader_or_interpreter_variables() {
    let j = job();
    let root = j.server.root().to_owned();
    j.server.put(
        "secret/data/prod/evil",
        Some(&root),
        r#"{"data":{"LD_PRELOAD":"/tmp/evil.so","OK_KEY":"fine-value"}}"#,
    );
    let out = j.run(
        &[("VAULTCTL_TOKEN".to_owned(), root.clone())],
        &["exec", "--secret", "prod/evil", "--", "true"],
    );
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(out.stderr.contains("LD_PRELOAD"), "{}", out.stderr);
    let tmp = tempfile::tempdir().unwrap();
    let env = tmp.path().join("ok.env");
    std::fs::write(&env, "OK_KEY=prod/evil#OK_KEY\n").unwrap();
    let out = j.run(
        &[("VAULTCTL_TOKEN".to_owned(), root)],
        &["exec", "--env-file", env.to_str().unwrap(), "--", "true"],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
}

#[test]
fn on_a_terminal_the_child_gets_a_tty_and_output_is_still_masked() {
    let j = job();
    let root = j.server.root().to_owned();
    let inner = format!(
        "{} exec --secret prod/app -- sh -c '[ -t 1 ] && echo child-sees-a-tty; echo \"key=$API_KEY\"'",
        binary("vaultctl").display()
    );
    // `script` gives vaultctl a terminal for stdout, as an interactive shell would.
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env("VAULTCTL_ADDR", &j.server.addr)
        .env("VAULTCTL_TOKEN", &root);
    let out = run_with_stdin(cmd, b"");
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("child-sees-a-tty"), "{}", out.stdout);
    assert!(out.stdout.contains("key=***"), "{}", out.stdout);
    assert!(!out.stdout.contains(API_KEY));
    // Through pipes (CI), the child sees a pipe.
    let piped = j.run(
        &[("VAULTCTL_TOKEN".to_owned(), root)],
        &[
            "exec",
            "--secret",
            "prod/app",
            "--",
            "sh",
            "-c",
            "[ -t 1 ] && echo child-sees-a-tty; true",
        ],
    );
    assert!(
        !piped.stdout.contains("child-sees-a-tty"),
        "{}",
        piped.stdout
    );
}

#[path = "exec_pipeline/issue8.rs"]
mod issue8;

#[path = "exec_pipeline/signals.rs"]
mod signals;

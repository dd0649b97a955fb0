//! The GitHub Action's committed bundle (`dist/main.js`, `dist/post.js`) run by this machine's
//! Node.js in a simulated runner: inputs as `INPUT_*` variables, the runner's file commands
//! (`GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_STATE`, `GITHUB_PATH`), GitHub's ID-token service
//! played by the test issuer, and the release served from loopback.

use super::*;
use e2e::issuer::GITHUB_REQUEST_TOKEN;
use std::time::{Duration, Instant};

/// One simulated job: its runner folders and the inputs every step of the action sees.
struct Runner {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// What one step printed, how it ended, and how long it took.
struct Step {
    success: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Step {
    /// stdout and stderr for a failure message: every value the step masked shown as `***`.
    fn log(&self) -> String {
        redact(&format!("{}\n{}", self.stdout, self.stderr), &self.stdout)
    }
}

/// `text` with every value `stdout` registered as a mask replaced by `***`.
fn redact(text: &str, stdout: &str) -> String {
    let mut values = masks(stdout);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values
        .iter()
        .filter(|v| !v.is_empty())
        .fold(text.to_owned(), |t, v| t.replace(v.as_str(), "***"))
}

impl Runner {
    fn new(ci: &Ci, release_url: &str, inputs: &[(&str, &str)]) -> Runner {
        Self::with_cache(ci, release_url, inputs, None)
    }

    /// A runner whose tool cache is `cache` (to see a second job reuse it).
    fn with_cache(
        ci: &Ci,
        release_url: &str,
        inputs: &[(&str, &str)],
        cache: Option<&Path>,
    ) -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let files = ["env", "output", "state", "path"];
        for name in files {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("temp")).unwrap();
        let cache = cache.map_or_else(|| dir.path().join("tool-cache"), Path::to_owned);
        std::fs::create_dir_all(&cache).unwrap();
        let path_of = |name: &str| dir.path().join(name).display().to_string();
        let mut env: Vec<(String, String)> = vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("CI".into(), "true".into()),
            ("GITHUB_ENV".into(), path_of("env")),
            ("GITHUB_OUTPUT".into(), path_of("output")),
            ("GITHUB_STATE".into(), path_of("state")),
            ("GITHUB_PATH".into(), path_of("path")),
            ("RUNNER_TEMP".into(), path_of("temp")),
            ("RUNNER_TOOL_CACHE".into(), cache.display().to_string()),
            ("GITHUB_REPOSITORY".into(), "acme/api".into()),
            ("GITHUB_ACTION_REPOSITORY".into(), "acme/vaultctl".into()),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
                ci.issuer.github_request_url(),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(),
                GITHUB_REQUEST_TOKEN.into(),
            ),
            ("INPUT_DOWNLOAD-URL".into(), release_url.into()),
        ];
        for name in ["ROLE", "AUDIENCE", "URL", "VERSION", "SECRETS"] {
            let value = inputs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map_or("", |(_, v)| *v);
            env.push((format!("INPUT_{name}"), value.into()));
        }
        Runner { dir, env }
    }

    /// Runs `dist/<script>.js` as the runner does: main, or post with the state main saved.
    fn step(&self, script: &str) -> Step {
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join(format!("dist/{script}.js")))
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if script == "post" {
            for (name, value) in file_commands(&self.file("state")) {
                cmd.env(format!("STATE_{name}"), value);
            }
        }
        let started = Instant::now();
        let out = output(&mut cmd);
        Step {
            success: out.status.success(),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
            elapsed: started.elapsed(),
        }
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    /// A variable exported to later steps through `GITHUB_ENV`.
    fn exported(&self, name: &str) -> Option<String> {
        file_commands(&self.file("env"))
            .into_iter()
            .find_map(|(k, v)| (k == name).then_some(v))
    }

    fn output_value(&self, name: &str) -> Option<String> {
        file_commands(&self.file("output"))
            .into_iter()
            .find_map(|(k, v)| (k == name).then_some(v))
    }
}

/// Parses a runner file command (`NAME<<DELIMITER … DELIMITER` blocks, or `NAME=value`).
fn file_commands(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for next in lines.by_ref() {
                if next == delimiter {
                    break;
                }
                value.push(next);
            }
            out.push((name.to_owned(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

/// The values the step registered with `::add-mask::`, in order, unescaped as the runner does.
fn masks(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("::add-mask::"))
        .map(|v| {
            v.replace("%0D", "\r")
                .replace("%0A", "\n")
                .replace("%25", "%")
        })
        .collect()
}

/// stdout without its `::add-mask::` lines: where no secret may appear.
fn unmasked_output(step: &Step) -> String {
    let rest: Vec<&str> = step
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    format!("{}\n{}", rest.join("\n"), step.stderr)
}

/// The line index in stdout of the first line containing `needle`.
fn line_of(stdout: &str, needle: &str) -> usize {
    stdout
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| {
            panic!(
                "{} not in the step's output:\n{}",
                redact(needle, stdout),
                redact(stdout, stdout)
            )
        })
}

fn lookup_status(ci: &Ci, token: &str) -> u16 {
    ci.server.get("auth/token/lookup-self", Some(token)).status
}

#[test]
fn action_installs_logs_in_exports_masks_and_post_revokes() {
    let ci = ci();
    let release = FileServer::serve(release_root());
    let secrets = "secret/data/ci/app API_KEY | API_KEY\nsecret/ci/app DB_PASSWORD | DB_PASS";
    let runner = Runner::new(
        &ci,
        &release.release_url(),
        &[
            ("role", "gh-deploy"),
            ("audience", AUD),
            ("url", &ci.server.addr),
            ("secrets", secrets),
        ],
    );
    let main = runner.step("main");
    assert!(main.success, "main failed:\n{}", main.log());
    println!(
        "simulated Action main step (cold tool cache: download, verify, unpack, login): {} ms",
        main.elapsed.as_millis()
    );

    // Installed and on PATH for later steps.
    let path_file = runner.file("path");
    let dir = PathBuf::from(path_file.lines().next().expect("nothing added to PATH"));
    let version = output(Command::new(dir.join("vaultctl")).arg("--version"));
    assert!(
        text(&version.stdout).starts_with(&format!("vaultctl {VERSION}")),
        "{}",
        text(&version.stdout)
    );
    assert_eq!(runner.output_value("version").as_deref(), Some(VERSION));

    // Exported for later steps.
    let token = runner
        .exported("VAULTCTL_TOKEN")
        .expect("no VAULTCTL_TOKEN");
    assert!(token.starts_with("vcs_"));
    assert_eq!(
        runner.exported("VAULTCTL_ADDR").as_deref(),
        Some(ci.server.addr.as_str())
    );
    assert_eq!(runner.exported("API_KEY").as_deref(), Some(API_KEY));
    assert_eq!(runner.exported("DB_PASS").as_deref(), Some(DB_PASSWORD));
    assert_eq!(runner.output_value("API_KEY").as_deref(), Some(API_KEY));
    assert!(
        runner
            .output_value("accessor")
            .is_some_and(|a| a.starts_with("vca_"))
    );

    // Masks: the ID token, the vaultd token and every secret (and each line of it) are
    // registered, and the token's and each secret's mask comes before anything else is done
    // with it; none of them appears anywhere else in the step's output.
    let registered = masks(&main.stdout);
    let jwt = registered
        .iter()
        .find(|m| m.split('.').count() == 3 && m.starts_with("eyJ"))
        .expect("the ID token was not masked")
        .clone();
    assert!(registered.contains(&token), "the token was not masked");
    for value in [API_KEY, DB_PASSWORD]
        .into_iter()
        .chain(DB_PASSWORD.lines())
    {
        assert!(
            registered.iter().any(|m| m == value),
            "a secret (or a line of one) was not masked"
        );
    }
    let token_mask = line_of(&main.stdout, &format!("::add-mask::{token}"));
    assert!(token_mask < line_of(&main.stdout, "logged in with role gh-deploy"));
    assert!(
        line_of(&main.stdout, &format!("::add-mask::{API_KEY}"))
            < line_of(&main.stdout, "exported API_KEY")
    );
    assert!(
        line_of(&main.stdout, "::add-mask::second-line-of-it")
            < line_of(&main.stdout, "exported DB_PASS")
    );
    assert_absent(
        &unmasked_output(&main),
        &[&token, &jwt, API_KEY, DB_PASSWORD],
        "the main step's log",
    );

    // The exported token works, through the installed vaultctl as a later step runs it.
    assert_eq!(lookup_status(&ci, &token), 200);
    let read = output(
        Command::new(dir.join("vaultctl"))
            .args(["kv", "get", "secret/ci/app", "--field", "API_KEY"])
            .env_clear()
            .env("VAULTCTL_ADDR", &ci.server.addr)
            .env("VAULTCTL_TOKEN", &token),
    );
    assert!(read.status.success(), "{}", text(&read.stderr));
    assert!(
        text(&read.stdout).trim() == API_KEY,
        "the later step read another value"
    );

    // post revokes it; a second post finds nothing left to do.
    let post = runner.step("post");
    assert!(post.success, "post failed:\n{}", post.log());
    assert!(
        post.stdout.contains("revoked the vaultd token"),
        "{}",
        post.log()
    );
    assert_absent(&unmasked_output(&post), &[&token], "the post step's log");
    assert_eq!(
        lookup_status(&ci, &token),
        403,
        "the token outlived the job"
    );
    let again = runner.step("post");
    assert!(again.success);
    assert!(
        again.stdout.contains("already expired or been revoked"),
        "{}",
        again.log()
    );
}

#[test]
fn action_post_revokes_the_token_after_a_failed_main() {
    let ci = ci();
    let release = FileServer::serve(release_root());
    let runner = Runner::new(
        &ci,
        &release.release_url(),
        &[
            ("role", "gh-deploy"),
            ("audience", AUD),
            ("url", &ci.server.addr),
            (
                "secrets",
                "secret/ci/app API_KEY\nsecret/ci/app NO_SUCH_KEY | MISSING",
            ),
        ],
    );
    let main = runner.step("main");
    assert!(!main.success, "main succeeded with a missing secret key");
    assert!(
        main.stdout
            .contains("::error::secrets: secret/data/ci/app has no key NO_SUCH_KEY"),
        "{}",
        main.log()
    );
    // Logged in before it failed: the token is live until post runs.
    let token = file_commands(&runner.file("state"))
        .into_iter()
        .find_map(|(k, v)| (k == "token").then_some(v))
        .expect("main saved no token for post");
    assert_eq!(lookup_status(&ci, &token), 200);
    assert_absent(
        &unmasked_output(&main),
        &[&token, API_KEY],
        "the main step's log",
    );

    let post = runner.step("post");
    assert!(post.success, "{}", post.log());
    assert!(
        post.stdout.contains("revoked the vaultd token"),
        "{}",
        post.log()
    );
    assert_eq!(
        lookup_status(&ci, &token),
        403,
        "the token outlived the failed job"
    );
}

#[test]
fn action_refused_login_fails_the_step_with_the_servers_reason() {
    let ci = ci();
    let release = FileServer::serve(release_root());
    let runner = Runner::new(
        &ci,
        &release.release_url(),
        &[
            ("role", "gh-other"),
            ("audience", AUD),
            ("url", &ci.server.addr),
        ],
    );
    let main = runner.step("main");
    assert!(
        !main.success,
        "a login with a role the job does not match succeeded"
    );

    // The same login made directly: the step must carry the server's own words.
    let jwt = ci
        .issuer
        .sign("rsa1", &ci.issuer.github_claims(AUD, "acme/api", "74"));
    let direct = ci.server.put(
        "auth/jwt/login",
        None,
        &json!({"role": "gh-other", "jwt": jwt}).to_string(),
    );
    assert_eq!(direct.status, 400, "{}", direct.raw);
    let reason = direct.errors().join("; ");
    assert!(reason.contains("repository_id"), "{reason}");
    let expected = format!("::error::vaultd refused the login with role gh-other: {reason}");
    assert!(
        main.stdout.lines().any(|l| l.starts_with(&expected)),
        "want {expected:?} in:\n{}",
        main.log()
    );
    assert!(runner.exported("VAULTCTL_TOKEN").is_none());
    assert!(
        runner.file("state").is_empty(),
        "state saved for a refused login"
    );
    let post = runner.step("post");
    assert!(post.success);
    assert!(
        post.stdout.contains("no vaultd token to revoke"),
        "{}",
        post.log()
    );
}

#[test]
fn action_refuses_a_tampered_archive_and_installs_nothing() {
    let ci = ci();
    let release = FileServer::serve(tampered_release_root());
    let runner = Runner::new(
        &ci,
        &release.release_url(),
        &[
            ("role", "gh-deploy"),
            ("audience", AUD),
            ("url", &ci.server.addr),
        ],
    );
    let main = runner.step("main");
    assert!(!main.success, "a tampered archive was accepted");
    assert!(
        main.stdout.contains(&format!(
            "::error::checksum mismatch for {}",
            archive_name()
        )),
        "{}",
        main.log()
    );
    assert!(runner.file("path").is_empty(), "added to PATH");
    assert!(
        runner.exported("VAULTCTL_TOKEN").is_none(),
        "logged in anyway"
    );
    assert!(
        !runner.dir.path().join("tool-cache/vaultctl").exists(),
        "cached a tampered archive"
    );
}

#[test]
fn action_without_a_role_only_installs_and_a_second_job_reuses_the_tool_cache() {
    let ci = ci();
    let release = FileServer::serve(release_root());
    let cache = tempfile::tempdir().unwrap();
    let first = Runner::with_cache(&ci, &release.release_url(), &[], Some(cache.path()));
    let cold = first.step("main");
    assert!(cold.success, "{}", cold.log());
    assert!(
        cold.stdout
            .contains("no role given: vaultctl installed, no login")
    );
    assert!(first.exported("VAULTCTL_TOKEN").is_none());

    let second = Runner::with_cache(&ci, &release.release_url(), &[], Some(cache.path()));
    let warm = second.step("main");
    assert!(warm.success, "{}", warm.log());
    assert!(
        warm.stdout
            .contains(&format!("vaultctl {VERSION} is in the tool cache")),
        "{}",
        warm.log()
    );
    assert_eq!(first.file("path"), second.file("path"));
    let node = output(Command::new("node").arg("--version"));
    println!(
        "simulated Action install under Node.js {}: {} ms with an empty tool cache, {} ms from the tool cache",
        text(&node.stdout).trim(),
        cold.elapsed.as_millis(),
        warm.elapsed.as_millis()
    );
}

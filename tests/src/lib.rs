//! Test support for the end-to-end suite: starts real `vaultd` processes on loopback ports,
//! talks to them over real HTTP, and runs the real `vaultctl` binary.
//!
//! The binaries are the ones cargo built for this workspace (`target/<profile>/`); set
//! `VAULTD_BIN` / `VAULTCTL_BIN` to test others.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test support: a panic is a failed test

pub mod issuer;
pub mod postgres;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary, next to the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase());
    if let Ok(path) = std::env::var(&var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --bins` first (or set {var})",
        path.display()
    );
    path
}

/// A running `vaultd`. Killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    pub root_token: Option<String>,
    pub stderr_log: PathBuf,
    mode: Mode,
    _tmp: Option<tempfile::TempDir>,
}

#[derive(Clone)]
enum Mode {
    Dev {
        audit_log: Option<PathBuf>,
        env: Vec<(String, String)>,
    },
    Server {
        config: PathBuf,
        env: Vec<(String, String)>,
    },
}

/// Reads stdout lines until `want` matches one, with a deadline. Returns all lines read.
fn read_until(child: &mut Child, want: impl Fn(&str) -> bool) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let done = want(&line);
                lines.push(line);
                if done {
                    return lines;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("vaultd exited early with {status}; stdout: {lines:?}");
                }
            }
            Err(_) => break,
        }
    }
    panic!("vaultd did not become ready; stdout: {lines:?}");
}

impl Server {
    /// `vaultd dev` on a fresh data dir with an audit log.
    pub fn dev() -> Server {
        Self::dev_with_env(&[])
    }

    /// `vaultd dev` with extra environment variables (e.g. `VAULTD_JWKS_REFRESH_COOLDOWN`).
    /// When the suite runs against PostgreSQL, the store is a fresh database there (the dev
    /// key files stay in the data dir); see [`postgres::shared_database_env`].
    pub fn dev_with_env(env: &[(&str, &str)]) -> Server {
        Self::dev_with(env, true)
    }

    /// Like [`Server::dev_with_env`], running the `vaultd` at `binary` (a benchmark comparing
    /// two builds).
    pub fn dev_of(binary: &Path, env: &[(&str, &str)]) -> Server {
        Self::dev_with_binary(Some(binary), env, true)
    }

    /// `vaultd dev` on sled whatever the suite's storage, for tests that look into the data
    /// dir's files.
    pub fn dev_sled() -> Server {
        Self::dev_with(&[], false)
    }

    fn dev_with(env: &[(&str, &str)], shared_storage: bool) -> Server {
        Self::dev_with_binary(None, env, shared_storage)
    }

    fn dev_with_binary(
        binary: Option<&Path>,
        env: &[(&str, &str)],
        shared_storage: bool,
    ) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let audit = tmp.path().join("audit.log");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if shared_storage {
            env.extend(postgres::shared_database_env().unwrap_or_default());
        }
        let mut server = Self::spawn_binary(
            binary,
            Mode::Dev {
                audit_log: Some(audit),
                env,
            },
            &data_dir,
            tmp.path(),
        );
        server._tmp = Some(tmp);
        server
    }

    /// `vaultd dev` on a given data dir (kept afterwards), e.g. to restart over existing data.
    pub fn dev_on(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let log_dir = data_dir.with_extension("logs");
        std::fs::create_dir_all(&log_dir).unwrap();
        Self::spawn(
            Mode::Dev {
                audit_log: Some(log_dir.join("audit.log")),
                env: env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            data_dir,
            &log_dir,
        )
    }

    /// `vaultd server` with a generated config (plain HTTP on loopback), uninitialised.
    pub fn production() -> Server {
        Self::production_with("")
    }

    /// Like [`Server::production`], with extra lines appended to `vaultd.toml` (TLS, limits).
    pub fn production_with(extra_config: &str) -> Server {
        Self::production_with_env(extra_config, &[])
    }

    /// Like [`Server::production_with`], with extra environment variables.
    pub fn production_with_env(extra_config: &str, env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let config = tmp.path().join("vaultd.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\naudit_log = \"{}\"\n",
                data_dir.display(),
                tmp.path().join("audit.log").display()
            ) + extra_config,
        )
        .unwrap();
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut server = Self::spawn(Mode::Server { config, env }, &data_dir, tmp.path());
        server._tmp = Some(tmp);
        server
    }

    fn spawn(mode: Mode, data_dir: &Path, log_dir: &Path) -> Server {
        Self::spawn_binary(None, mode, data_dir, log_dir)
    }

    fn spawn_binary(
        binary_path: Option<&Path>,
        mode: Mode,
        data_dir: &Path,
        log_dir: &Path,
    ) -> Server {
        let stderr_log = log_dir.join(format!(
            "vaultd-{}.stderr",
            Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id())
        ));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .unwrap();
        let mut cmd = Command::new(binary_path.map_or_else(|| binary("vaultd"), Path::to_owned));
        // The most verbose level by default: tests then prove nothing secret is logged even
        // at trace. A caller's own VAULTD_LOG (benchmarks) wins.
        cmd.env("VAULTD_LOG", "trace");
        match &mode {
            Mode::Dev { audit_log, env } => {
                cmd.env_remove("VAULTD_STORAGE_URL")
                    .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(data_dir)
                    .envs(env.iter().map(|(k, v)| (k, v)));
                if let Some(a) = audit_log {
                    cmd.arg("--audit-log").arg(a);
                }
            }
            Mode::Server { config, env } => {
                cmd.args(["server", "--config"])
                    .arg(config)
                    .envs(env.iter().map(|(k, v)| (k, v)));
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().unwrap();
        let lines = read_until(&mut child, |l| {
            l.starts_with("export VAULTCTL_TOKEN=") || l.starts_with("vaultd listening on ")
        });
        let addr = lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("export VAULTCTL_ADDR=")
                    .or_else(|| l.strip_prefix("vaultd listening on "))
            })
            .unwrap()
            .to_owned();
        let root_token = lines
            .iter()
            .find_map(|l| l.strip_prefix("export VAULTCTL_TOKEN="))
            .map(str::to_owned);
        Server {
            child,
            addr,
            data_dir: data_dir.to_owned(),
            root_token,
            stderr_log,
            mode,
            _tmp: None,
        }
    }

    /// The process id of the running vaultd.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a graceful exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    /// Starts the same server again over the same data dir (after kill9/terminate).
    pub fn restart(&mut self) {
        let tmp = self._tmp.take();
        let log_dir = self.stderr_log.parent().unwrap().to_owned();
        let mut next = Self::spawn(self.mode.clone(), &self.data_dir, &log_dir);
        next._tmp = tmp;
        if next.root_token.is_none() {
            next.root_token = self.root_token.clone();
        }
        let old = std::mem::replace(self, next);
        drop(old);
    }

    pub fn audit_log(&self) -> PathBuf {
        self.stderr_log.parent().unwrap().join("audit.log")
    }

    pub fn root(&self) -> &str {
        self.root_token.as_deref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.addr, path.trim_start_matches('/'))
    }

    /// One HTTP request; returns status, raw headers of interest and the JSON body (`Null` if none).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Resp {
        raw_call(
            &self.url(path),
            method,
            token,
            body.map(|b| b.as_bytes().to_vec()),
        )
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call("GET", path, token, None)
    }

    pub fn put(&self, path: &str, token: Option<&str>, body: &str) -> Resp {
        self.call("PUT", path, token, Some(body))
    }

    /// `vaultd_store_commits_total` and `vaultd_store_commit_batches_total` from the metrics
    /// (read with `token`): durable commits made, and the callers' batches they carried.
    pub fn store_commit_counts(&self, token: &str) -> (u64, u64) {
        let text = self.get("sys/metrics?format=prometheus", Some(token)).raw;
        let value = |name: &str| {
            text.lines()
                .find_map(|line| {
                    line.strip_prefix(name)?
                        .strip_prefix(' ')?
                        .parse::<u64>()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no {name} in the metrics"))
        };
        (
            value("vaultd_store_commits_total"),
            value("vaultd_store_commit_batches_total"),
        )
    }

    /// `sys/init` with one unseal key; returns (unseal key in base64, root token).
    pub fn init(&self) -> (String, String) {
        let r = self.put(
            "sys/init",
            None,
            r#"{"secret_shares":1,"secret_threshold":1}"#,
        );
        assert_eq!(r.status, 200, "{}", r.raw);
        (
            r.body["keys_base64"][0].as_str().unwrap().to_owned(),
            r.body["root_token"].as_str().unwrap().to_owned(),
        )
    }

    /// `sys/unseal` with `key`; panics unless the server is unsealed afterwards.
    pub fn unseal(&self, key: &str) {
        let r = self.put(
            "sys/unseal",
            None,
            &serde_json::json!({ "key": key }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.raw);
        assert_eq!(r.body["sealed"], false, "{}", r.raw);
    }

    /// Applies a policy document with the root token; panics unless it is accepted.
    pub fn apply_policy(&self, document: &str) {
        self.apply_policy_as(self.root(), document);
    }

    /// Applies a policy document with `token`; panics unless it is accepted.
    pub fn apply_policy_as(&self, token: &str, document: &str) {
        let body = serde_json::json!({ "documents": [document] }).to_string();
        let r = self.put("sys/vaultctl/policy", Some(token), &body);
        assert_eq!(r.status, 200, "policy document refused: {}", r.raw);
    }

    /// Runs `vaultctl` against this server with the given token, stdin and arguments.
    pub fn vaultctl(&self, token: Option<&str>, stdin: &[u8], args: &[&str]) -> Output {
        let mut cmd = Command::new(binary("vaultctl"));
        cmd.args(args)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("VAULTCTL_TOKEN")
            .env("VAULTCTL_ADDR", &self.addr);
        if let Some(t) = token {
            cmd.env("VAULTCTL_TOKEN", t);
        }
        run_with_stdin(cmd, stdin)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output of a finished process.
#[derive(Debug)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    Output {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub body: Value,
    pub raw: String,
}

impl Resp {
    /// The `errors` array as strings.
    pub fn errors(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn raw_call(url: &str, method: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Resp {
    try_call(url, method, token, body).unwrap()
}

/// Like [`raw_call`], but a connection error (a killed server) is an `Err`, not a panic.
pub fn try_call(
    url: &str,
    method: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<Resp, ureq::Error> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        builder = builder.header("X-Vault-Token", t);
    }
    let request = builder.body(body.unwrap_or_default()).unwrap();
    let mut response = agent().run(request)?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let cache_control = header("cache-control");
    let mut raw = String::new();
    let _ = response.body_mut().as_reader().read_to_string(&mut raw);
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Ok(Resp {
        status: response.status().as_u16(),
        content_type,
        cache_control,
        body,
        raw,
    })
}

/// Every file under `dir`, read as bytes.
pub fn all_file_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A small deterministic generator for randomized tests; print the seed so a failure can be
/// replayed.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

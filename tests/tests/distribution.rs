//! Distribution end to end: the release archive `scripts/release.sh` builds from this tree's
//! binaries, served over loopback HTTP as a GitHub release serves it, then installed and used
//! the ways users install vaultctl — `scripts/install.sh`, the GitHub Action's committed bundle
//! in a simulated runner, the GitLab CI component in a simulated job — plus the container image
//! (built with buildah) and the Kubernetes manifests (validated offline).

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use e2e::issuer::TestIssuer;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[path = "distribution/action.rs"]
mod action;
#[path = "distribution/gitlab.rs"]
mod gitlab;
#[path = "distribution/image.rs"]
mod image;
#[path = "distribution/install.rs"]
mod install;
#[path = "distribution/kubernetes.rs"]
mod kubernetes;

/// The workspace version: what the archives, the Action and the component install by default.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The audience every simulated CI job asks for, and the roles accept.
const AUD: &str = "https://vault.example.com";
const API_KEY: &str = "ak_live_dist_0123456789abcdef";
/// Two lines: masks must cover each line on its own too.
const DB_PASSWORD: &str = "pa55 w0rd-%-first\nsecond-line-of-it";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The target triple the release archives of this machine are named after.
fn host_target() -> &'static str {
    assert_eq!(std::env::consts::OS, "linux", "the suite runs on Linux");
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no release target for {other}"),
    }
}

fn archive_name() -> String {
    format!("vaultctl-{VERSION}-{}.tar.gz", host_target())
}

/// Runs `cmd` to completion; panics with its output if it could not start.
fn output(cmd: &mut Command) -> std::process::Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder laid out as GitHub serves releases: `v<version>/` holding the archive built by
/// `scripts/release.sh` from the binaries under test, `SHA256SUMS` and `install.sh`. Built once
/// per test run (every test of this file shares it).
fn release_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("distribution-release");
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join(format!("v{VERSION}"));
        std::fs::create_dir_all(&dir).unwrap();
        // The binaries may come from two places (VAULTD_BIN, VAULTCTL_BIN): link them together.
        let bin_dir = root.join("bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        for name in ["vaultd", "vaultctl"] {
            std::os::unix::fs::symlink(e2e::binary(name), bin_dir.join(name)).unwrap();
        }
        let out = output(
            Command::new(repo_root().join("scripts/release.sh"))
                .args(["archive", "--target", host_target(), "--bin-dir"])
                .arg(&bin_dir)
                .arg("--out")
                .arg(&dir),
        );
        assert!(
            out.status.success(),
            "scripts/release.sh failed\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        std::fs::copy(
            repo_root().join("scripts/install.sh"),
            dir.join("install.sh"),
        )
        .unwrap();
        root
    })
}

/// A copy of the release whose archive has one byte changed (its SHA256SUMS left as it was).
fn tampered_release_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("distribution-tampered");
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join(format!("v{VERSION}"));
        std::fs::create_dir_all(&dir).unwrap();
        let original = release_root().join(format!("v{VERSION}"));
        for name in ["SHA256SUMS", "install.sh"] {
            std::fs::copy(original.join(name), dir.join(name)).unwrap();
        }
        let mut bytes = std::fs::read(original.join(archive_name())).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(dir.join(archive_name()), bytes).unwrap();
        root
    })
}

/// A static file server on loopback (GET only), standing in for the release download host.
struct FileServer {
    url: String,
}

impl FileServer {
    fn serve(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let root = root.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let root = root.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                    let path = path.split('?').next().unwrap_or("/");
                    let file = (!path.split('/').any(|s| s == ".."))
                        .then(|| root.join(path.trim_start_matches('/')))
                        .filter(|f| f.is_file());
                    let (status, body) = match file {
                        Some(f) => ("200 OK", std::fs::read(f).unwrap_or_default()),
                        None => ("404 Not Found", b"not found".to_vec()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                });
            }
        });
        FileServer { url }
    }

    /// The folder of release `v<VERSION>`, as `download-url` / `--base-url` take it.
    fn release_url(&self) -> String {
        format!("{}/v{VERSION}", self.url)
    }
}

/// The bin folder of the pinned Python tools (kubernetes-validate, PyYAML), installed by
/// `scripts/ci-tools.sh` when missing.
fn ci_tools() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = output(&mut Command::new(repo_root().join("scripts/ci-tools.sh")));
        assert!(
            out.status.success(),
            "scripts/ci-tools.sh failed: {}",
            text(&out.stderr)
        );
        PathBuf::from(text(&out.stdout).trim())
    })
}

/// The YAML documents of `file`, as JSON.
fn yaml_documents(file: &Path) -> Vec<Value> {
    let out = output(
        Command::new(ci_tools().join("python"))
            .arg(repo_root().join("tests/fixtures/distribution/yaml2json.py"))
            .arg(file),
    );
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        file.display(),
        text(&out.stderr)
    );
    let mut files: Vec<Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
    files.remove(0)
}

/// A `vaultd dev` whose policy trusts the test issuer for a GitHub role (`gh-deploy`, repository
/// 74), a GitHub role no job matches (`gh-other`) and a GitLab role (`gl-deploy`, project 42),
/// with `secret/ci/app` holding `API_KEY` and `DB_PASSWORD`.
struct Ci {
    server: Server,
    issuer: TestIssuer,
}

fn ci() -> Ci {
    let issuer = TestIssuer::start();
    issuer.set_github_claims(issuer.github_claims(AUD, "acme/api", "74"));
    let server = Server::dev();
    server.apply_policy(&format!(
        r#"
[issuers.ci]
issuer = "{issuer}"
algorithms = ["RS256"]

[roles.gh-deploy]
issuer = "ci"
audiences = ["{AUD}"]
claims = {{ repository_id = "74", ref = "refs/heads/main", event_name = "push" }}
policies = ["ci-read"]

[roles.gh-other]
issuer = "ci"
audiences = ["{AUD}"]
claims = {{ repository_id = "99", ref = "refs/heads/main", event_name = "push" }}
policies = ["ci-read"]

[roles.gl-deploy]
issuer = "ci"
audiences = ["{AUD}"]
claims = {{ project_id = "42", ref_protected = "true" }}
policies = ["ci-read"]

[policies.ci-read]
rules = [{{ path = "secret/data/ci/app", capabilities = ["read"] }}]
"#,
        issuer = issuer.url
    ));
    let r = server.put(
        "secret/data/ci/app",
        Some(server.root()),
        &json!({"data": {"API_KEY": API_KEY, "DB_PASSWORD": DB_PASSWORD}}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    Ci { server, issuer }
}

/// Asserts that none of `secrets` (nor any line of them) is in `haystack`; names the index only.
fn assert_absent(haystack: &str, secrets: &[&str], context: &str) {
    for (index, secret) in secrets.iter().enumerate() {
        for line in secret.lines().filter(|l| l.len() >= 4) {
            assert!(
                !haystack.contains(line),
                "secret #{index} appears in {context}"
            );
        }
    }
}

//! vaultctl's answers to the common mistakes, pinned whole (arguments, stdin, environment →
//! stdout, stderr, exit status), as a table of cases: every message says what went wrong and
//! what to do, on one line, without echoing a secret. `{addr}` stands for the server's address.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use std::process::Command;

/// Which token a case runs with.
#[derive(Clone, Copy)]
enum Auth {
    None,
    Root,
    /// A token with only the `default` policy.
    Limited,
    /// A `vcs_` token that was never issued (and whose checksum fails).
    Bogus,
}

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    stdin: &'static str,
    auth: Auth,
    /// The address: the live server, or one where nothing listens.
    live: bool,
    status: i32,
    stdout: &'static str,
    stderr: &'static str,
}

const DEAD: &str = "http://127.0.0.1:1";

const CASES: &[Case] = &[
    Case {
        name: "no token",
        args: &["kv", "get", "secret/x"],
        stdin: "",
        auth: Auth::None,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: reading secret/x: no token — set VAULTCTL_TOKEN (or VAULT_TOKEN)\n",
    },
    Case {
        name: "nothing listening",
        args: &["status"],
        stdin: "",
        auth: Auth::None,
        live: false,
        status: 1,
        stdout: "",
        stderr: "vaultctl: reading the seal status: cannot connect to http://127.0.0.1:1 (connection refused) — is vaultd running at http://127.0.0.1:1? set VAULTCTL_ADDR\n",
    },
    Case {
        name: "data argument without =",
        args: &["kv", "put", "secret/x", "password"],
        stdin: "",
        auth: Auth::Root,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: parsing the data arguments: data argument 1 has no '=' — write each field as KEY=VALUE, KEY=@FILE or KEY=- (value from stdin)\n",
    },
    Case {
        name: "missing argument",
        args: &["kv", "get"],
        stdin: "",
        auth: Auth::Root,
        live: true,
        status: 2,
        stdout: "",
        stderr: "error: the following required arguments were not provided:\n  <PATH>\n\nUsage: vaultctl kv get <PATH>\n\nFor more information, try '--help'.\n",
    },
    Case {
        name: "missing secret",
        args: &["kv", "get", "secret/nope"],
        stdin: "",
        auth: Auth::Root,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: reading secret/nope: no secret at secret/nope — check the path with vaultctl kv list\n",
    },
    Case {
        name: "unknown token",
        args: &["kv", "get", "secret/app"],
        stdin: "",
        auth: Auth::Bogus,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: reading secret/app: the token is unknown, expired or revoked — log in again / set VAULTCTL_TOKEN to a valid token\n",
    },
    Case {
        name: "permission denied",
        args: &["kv", "get", "secret/app"],
        stdin: "",
        auth: Auth::Limited,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: reading secret/app: permission denied — the token's policies do not allow this; see them with vaultctl token lookup\n",
    },
    Case {
        name: "check-and-set mismatch",
        args: &["kv", "put", "secret/app", "password=-", "--cas", "7"],
        stdin: "new-password-value",
        auth: Auth::Root,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: writing secret/app: check-and-set parameter did not match the current version — read the current version with vaultctl kv metadata get and pass it as --cas\n",
    },
    Case {
        name: "missing field",
        args: &["kv", "get", "secret/app", "--field", "nope"],
        stdin: "",
        auth: Auth::Root,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: reading secret/app: no field \"nope\" in secret/app — it has: password\n",
    },
    Case {
        name: "policy file missing",
        args: &["policy", "check", "/nonexistent/policy.toml"],
        stdin: "",
        auth: Auth::None,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: reading /nonexistent/policy.toml: No such file or directory (os error 2) — check the file path\n",
    },
    Case {
        name: "malformed unseal key",
        args: &["operator", "unseal"],
        stdin: "not-a-key-but-a-secret-looking-thing\n",
        auth: Auth::None,
        live: true,
        status: 1,
        stdout: "",
        stderr: "vaultctl: unsealing vaultd: vaultd refused the unseal key: 'key' must be a 32-byte key in hex or base64 — use the unseal key printed by vaultctl operator init, or the passphrase set then\n",
    },
];

#[test]
fn common_mistakes_get_their_whole_pinned_answer() {
    let server = Server::dev();
    let root = server.root().to_owned();
    let w = server.put(
        "secret/data/app",
        Some(&root),
        r#"{"data":{"password":"pinned-case-secret"}}"#,
    );
    assert_eq!(w.status, 200, "{}", w.raw);
    let limited = server.put(
        "auth/token/create",
        Some(&root),
        r#"{"policies":["default"]}"#,
    );
    let limited = limited.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bogus = format!("vcs_{}", "A".repeat(49));
    let mut mismatches = Vec::new();
    for case in CASES {
        let mut cmd = Command::new(e2e::binary("vaultctl"));
        cmd.args(case.args)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("VAULTCTL_TOKEN")
            .env("VAULTCTL_ADDR", if case.live { &server.addr } else { DEAD });
        match case.auth {
            Auth::None => {}
            Auth::Root => {
                cmd.env("VAULTCTL_TOKEN", &root);
            }
            Auth::Limited => {
                cmd.env("VAULTCTL_TOKEN", &limited);
            }
            Auth::Bogus => {
                cmd.env("VAULTCTL_TOKEN", &bogus);
            }
        }
        let out = e2e::run_with_stdin(cmd, case.stdin.as_bytes());
        let expected_stderr = case.stderr.replace("{addr}", &server.addr);
        if out.status != Some(case.status)
            || out.stdout != case.stdout
            || out.stderr != expected_stderr
        {
            mismatches.push(format!(
                "case {:?}:\n  status {:?} (want {})\n  stdout {:?}\n    want {:?}\n  stderr {:?}\n    want {:?}",
                case.name, out.status, case.status, out.stdout, case.stdout, out.stderr, expected_stderr
            ));
        }
        for secret in [
            "pinned-case-secret",
            "new-password-value",
            "not-a-key-but-a-secret",
        ] {
            assert!(
                !out.stderr.contains(secret) && !out.stdout.contains(secret),
                "case {:?} echoed a secret",
                case.name
            );
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

//! `vaultctl` admin commands against a real server: exit codes, stdin-only secrets, output.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;

#[test]
fn operator_init_unseal_seal_via_cli() {
    let server = Server::production();
    let out = server.vaultctl(None, b"", &["status"]);
    assert_eq!(out.status, Some(2), "{out:?}");
    let init = server.vaultctl(None, b"", &["--format", "json", "operator", "init"]);
    assert_eq!(init.status, Some(0), "{init:?}");
    let body: serde_json::Value = serde_json::from_str(&init.stdout).unwrap();
    let key = body["keys_base64"][0].as_str().unwrap().to_owned();
    let root = body["root_token"].as_str().unwrap().to_owned();

    let wrong = server.vaultctl(
        None,
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        &["operator", "unseal"],
    );
    assert_eq!(wrong.status, Some(1), "{wrong:?}");
    assert_eq!(
        wrong.stderr.lines().count(),
        1,
        "one line: {}",
        wrong.stderr
    );
    assert!(wrong.stderr.starts_with("vaultctl: "));

    let unseal = server.vaultctl(None, format!("{key}\n").as_bytes(), &["operator", "unseal"]);
    assert_eq!(unseal.status, Some(0), "{unseal:?}");
    assert_eq!(server.vaultctl(None, b"", &["status"]).status, Some(0));

    let rotate = server.vaultctl(Some(&root), b"", &["operator", "rotate"]);
    assert_eq!(rotate.status, Some(0), "{rotate:?}");
    assert!(rotate.stdout.contains('2'), "{}", rotate.stdout);

    assert_eq!(
        server
            .vaultctl(Some(&root), b"", &["operator", "seal"])
            .status,
        Some(0)
    );
    assert_eq!(server.vaultctl(None, b"", &["status"]).status, Some(2));
    let sealed = server.vaultctl(Some(&root), b"", &["kv", "get", "x"]);
    assert_eq!(sealed.status, Some(1));
    assert!(sealed.stderr.contains("unseal"), "{}", sealed.stderr);
}

#[test]
fn kv_put_get_with_stdin_and_files() {
    let server = Server::dev();
    let root = server.root();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cert.pem");
    std::fs::write(&file, "-----BEGIN-----\nabc\n").unwrap();
    let put = server.vaultctl(
        Some(root),
        b"stdin-secret-value\n",
        &[
            "kv",
            "put",
            "secret/app/db",
            "user=svc",
            "password=-",
            &format!("cert=@{}", file.display()),
        ],
    );
    assert_eq!(put.status, Some(0), "{put:?}");
    let field = server.vaultctl(
        Some(root),
        b"",
        &["kv", "get", "app/db", "--field", "password"],
    );
    assert_eq!(field.stdout, "stdin-secret-value\n");
    let cert = server.vaultctl(Some(root), b"", &["kv", "get", "app/db", "--field", "cert"]);
    assert_eq!(cert.stdout, "-----BEGIN-----\nabc\n\n");
    let json = server.vaultctl(
        Some(root),
        b"",
        &["--format", "json", "kv", "get", "app/db"],
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["data"]["user"], "svc");
    assert_eq!(v["metadata"]["version"], 1);

    let cas = server.vaultctl(
        Some(root),
        b"",
        &["kv", "put", "app/db", "user=x", "--cas", "0"],
    );
    assert_eq!(cas.status, Some(1));
    assert!(cas.stderr.contains("check-and-set"), "{}", cas.stderr);

    let list = server.vaultctl(Some(root), b"", &["--format", "json", "kv", "list", "app"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list.stdout).unwrap(),
        serde_json::json!(["db"])
    );
    assert_eq!(
        server
            .vaultctl(Some(root), b"", &["kv", "delete", "app/db"])
            .status,
        Some(0)
    );
    let gone = server.vaultctl(Some(root), b"", &["kv", "get", "app/db"]);
    assert_eq!(gone.status, Some(1));
    assert!(gone.stderr.contains("undelete"), "{}", gone.stderr);
    assert_eq!(
        server
            .vaultctl(
                Some(root),
                b"",
                &["kv", "undelete", "app/db", "--versions", "1"]
            )
            .status,
        Some(0)
    );
    assert_eq!(
        server
            .vaultctl(Some(root), b"", &["kv", "get", "app/db", "--field", "user"])
            .stdout,
        "svc\n"
    );

    let missing = server.vaultctl(Some(root), b"", &["kv", "get", "nope"]);
    assert_eq!(missing.status, Some(1));
    let bad_args = server.vaultctl(Some(root), b"", &["kv", "put", "app/db", "novalue"]);
    assert_ne!(bad_args.status, Some(0));
    assert!(
        !bad_args.stderr.contains("novalue"),
        "argument echoed: {}",
        bad_args.stderr
    );
    let unknown_cmd = server.vaultctl(Some(root), b"", &["kv", "frobnicate"]);
    assert_eq!(unknown_cmd.status, Some(2));
}

#[test]
fn token_create_lookup_revoke_and_bad_token() {
    let server = Server::dev();
    let root = server.root();
    let created = server.vaultctl(
        Some(root),
        b"",
        &[
            "--format",
            "json",
            "token",
            "create",
            "--policy",
            "reader",
            "--ttl",
            "10m",
            "--metadata",
            "team=infra",
        ],
    );
    assert_eq!(created.status, Some(0), "{created:?}");
    let v: serde_json::Value = serde_json::from_str(&created.stdout).unwrap();
    let token = v["client_token"]
        .as_str()
        .or(v["token"].as_str())
        .unwrap()
        .to_owned();
    let accessor = v["accessor"].as_str().unwrap().to_owned();
    let lookup = server.vaultctl(Some(&token), b"", &["token", "lookup"]);
    assert_eq!(lookup.status, Some(0), "{lookup:?}");
    assert!(lookup.stdout.contains("team"), "{}", lookup.stdout);
    assert!(!lookup.stdout.contains(&token), "lookup printed the token");
    let revoke = server.vaultctl(
        Some(root),
        b"",
        &["token", "revoke", "--accessor", &accessor],
    );
    assert_eq!(revoke.status, Some(0), "{revoke:?}");
    let after = server.vaultctl(Some(&token), b"", &["token", "lookup"]);
    assert_eq!(after.status, Some(1));
    assert!(
        after.stderr.contains("invalid token") || after.stderr.contains("expired or revoked"),
        "{}",
        after.stderr
    );
    assert!(!after.stderr.contains(&token));

    let down = e2e::run_with_stdin(
        {
            let mut c = std::process::Command::new(e2e::binary("vaultctl"));
            c.args(["status"])
                .env("VAULTCTL_ADDR", "http://127.0.0.1:9");
            c
        },
        b"",
    );
    assert_eq!(down.status, Some(1));
    assert!(down.stderr.contains("VAULTCTL_ADDR"), "{}", down.stderr);
}

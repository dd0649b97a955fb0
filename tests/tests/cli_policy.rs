//! `vaultctl policy …` and `vaultctl token lookup` against a real server.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use e2e::issuer::TestIssuer;
use serde_json::json;

fn examples() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/examples");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn check_apply_list_show_test_delete() {
    let issuer = TestIssuer::start();
    let server = Server::dev();
    let root = server.root().to_owned();
    let tmp = tempfile::tempdir().unwrap();

    // Offline check of the shipped examples: valid and lint-clean.
    let mut args = vec!["policy", "check"];
    let files = examples();
    args.extend(files.iter().map(String::as_str));
    let out = server.vaultctl(None, b"", &args);
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("0 warning(s)"), "{}", out.stdout);

    // A broken document: one line naming the file; nothing applied.
    let broken = tmp.path().join("broken.toml");
    std::fs::write(&broken, "[roles.x]\nissuer = \"ci\"\npolicies = []\n").unwrap();
    let out = server.vaultctl(
        Some(&root),
        b"",
        &["policy", "apply", broken.to_str().unwrap()],
    );
    assert_eq!(out.status, Some(1));
    assert!(out.stderr.contains("broken.toml"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);

    // A legal but risky document: applied, with a lint warning.
    let doc = tmp.path().join("ci.toml");
    std::fs::write(
        &doc,
        format!(
            "[issuers.ci]\nissuer = \"{}\"\n\n[roles.deploy]\nissuer = \"ci\"\naudiences = [\"https://vault.example.com\"]\nclaims = {{ repository = \"acme/api\", ref = \"refs/heads/main\" }}\npolicies = [\"app-read\"]\n\n[policies.app-read]\nrules = [{{ path = \"secret/data/app/*\", capabilities = [\"read\"] }}]\n",
            issuer.url
        ),
    )
    .unwrap();
    let dry = server.vaultctl(
        Some(&root),
        b"",
        &["policy", "apply", "--dry-run", doc.to_str().unwrap()],
    );
    assert_eq!(dry.status, Some(0), "{dry:?}");
    assert!(
        dry.stdout.contains("+ role deploy") && dry.stdout.contains("dry run"),
        "{}",
        dry.stdout
    );
    assert!(dry.stderr.contains("mutable-identity"), "{}", dry.stderr);
    let list = server.vaultctl(Some(&root), b"", &["policy", "list"]);
    assert!(
        !list.stdout.contains("deploy"),
        "dry run applied: {}",
        list.stdout
    );

    let applied = server.vaultctl(
        Some(&root),
        b"",
        &["policy", "apply", doc.to_str().unwrap()],
    );
    assert_eq!(applied.status, Some(0), "{applied:?}");
    assert!(
        applied.stdout.contains("applied: version"),
        "{}",
        applied.stdout
    );
    let list = server.vaultctl(Some(&root), b"", &["--format", "json", "policy", "list"]);
    let names: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert!(
        names["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "deploy")
    );
    let again = server.vaultctl(
        Some(&root),
        b"",
        &["policy", "apply", doc.to_str().unwrap()],
    );
    assert!(again.stdout.contains("no changes"), "{}", again.stdout);

    // show prints TOML that parses back to the same document.
    let show = server.vaultctl(Some(&root), b"", &["policy", "show"]);
    assert_eq!(show.status, Some(0), "{show:?}");
    let shown = policies::parse_document(&show.stdout).unwrap();
    assert!(shown.roles.contains_key("deploy"));

    // test: against the server, and offline.
    let claims = tmp.path().join("claims.json");
    std::fs::write(&claims, json!({"iss": issuer.url, "aud": "https://vault.example.com", "repository": "acme/api", "ref": "refs/heads/main"}).to_string()).unwrap();
    let ok = server.vaultctl(
        Some(&root),
        b"",
        &[
            "policy",
            "test",
            "--role",
            "deploy",
            "--claims",
            claims.to_str().unwrap(),
        ],
    );
    assert_eq!(ok.status, Some(0), "{ok:?}");
    assert!(
        ok.stdout.contains("would succeed") && ok.stdout.contains("secret/data/app/*"),
        "{}",
        ok.stdout
    );
    std::fs::write(&claims, json!({"iss": issuer.url, "aud": "https://vault.example.com", "repository": "acme/api", "ref": "refs/heads/dev"}).to_string()).unwrap();
    let fail = server.vaultctl(
        Some(&root),
        b"",
        &[
            "policy",
            "test",
            "--role",
            "deploy",
            "--claims",
            claims.to_str().unwrap(),
        ],
    );
    assert_eq!(fail.status, Some(1), "a failing login exits 1: {fail:?}");
    assert!(
        fail.stdout.contains("FAIL") && fail.stdout.contains("ref"),
        "{}",
        fail.stdout
    );
    let offline = server.vaultctl(
        None,
        b"",
        &[
            "policy",
            "test",
            "--role",
            "deploy",
            "--claims",
            claims.to_str().unwrap(),
            "--file",
            doc.to_str().unwrap(),
        ],
    );
    assert_eq!(
        offline.status,
        Some(1),
        "the offline test fails too: {offline:?}"
    );
    assert!(offline.stdout.contains("ref"), "{}", offline.stdout);

    // delete: the role goes; a policy still in use cannot be deleted.
    let in_use = server.vaultctl(
        Some(&root),
        b"",
        &["policy", "delete", "policy", "app-read"],
    );
    assert_eq!(in_use.status, Some(1), "{in_use:?}");
    let deleted = server.vaultctl(Some(&root), b"", &["policy", "delete", "role", "deploy"]);
    assert_eq!(deleted.status, Some(0), "{deleted:?}");
    let list = server.vaultctl(Some(&root), b"", &["policy", "list"]);
    assert_eq!(list.status, Some(0), "{list:?}");
    assert!(list.stdout.contains("app-read"), "{}", list.stdout);
    assert!(!list.stdout.contains("deploy"), "{}", list.stdout);
}

#[test]
fn token_lookup_shows_login_claims() {
    let issuer = TestIssuer::start();
    let server = Server::dev();
    let doc = format!(
        "[issuers.ci]\nissuer = \"{}\"\n[roles.gh]\nissuer = \"ci\"\naudiences = [\"a\"]\nclaims = {{ repository_id = \"74\" }}\npolicies = []\n",
        issuer.url
    );
    server.apply_policy(&doc);
    let jwt = issuer.sign("rsa1", &issuer.github_claims("a", "acme/api", "74"));
    let login = server.put(
        "auth/jwt/login",
        None,
        &json!({"role": "gh", "jwt": jwt}).to_string(),
    );
    let token = login.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = server.vaultctl(Some(&token), b"", &["token", "lookup"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    for want in ["acme/api", "refs/heads/main", "gh", "auth/jwt/login"] {
        assert!(out.stdout.contains(want), "missing {want}: {}", out.stdout);
    }
    assert!(!out.stdout.contains(&token));
}

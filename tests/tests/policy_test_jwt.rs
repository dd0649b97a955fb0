//! `vaultctl policy test --jwt`: a captured ID token explained check by check — verified by
//! the server without logging in or spending its `jti`, or decoded offline and said so.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use e2e::issuer::{TestIssuer, now};
use e2e::{Output, Server};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://vault.example.com";

fn document(issuer: &TestIssuer) -> String {
    format!(
        r#"
[issuers.github]
issuer = "{}"

[roles.deploy]
issuer = "github"
audiences = ["{AUDIENCE}"]
claims = {{ repository_id = "74", ref = "refs/heads/main", repository_owner_id = "1001" }}
policies = ["ci"]

[roles.legacy-glob]
issuer = "github"
audiences = ["{AUDIENCE}"]
glob_claims = ["sub"]
claims = {{ repository_id = "74", sub = "repo:acme/api:*" }}
policies = ["ci"]

[policies.ci]
rules = [{{ path = "secret/data/ci/{{{{claims.repository_id}}}}/*", capabilities = ["read"] }}]
"#,
        issuer.url
    )
}

struct Case {
    issuer: TestIssuer,
    server: Server,
    tmp: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let issuer = TestIssuer::start();
        let server = Server::dev();
        server.apply_policy(&document(&issuer));
        Case {
            issuer,
            server,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn token(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.issuer.github_claims(AUDIENCE, "acme/api", "74");
        change(&mut claims);
        self.issuer.sign("rsa1", &claims)
    }

    /// `policy test --role ROLE --jwt FILE [extra…]` against the server; the token is never
    /// in the output.
    fn test(&self, role: &str, jwt: &str, extra: &[&str]) -> Output {
        let file = self.tmp.path().join("token.jwt");
        std::fs::write(&file, format!("{jwt}\n")).unwrap();
        let mut args = vec![
            "policy",
            "test",
            "--role",
            role,
            "--jwt",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = self.server.vaultctl(Some(self.server.root()), b"", &args);
        assert_token_absent(&out, jwt);
        out
    }

    fn document_file(&self) -> String {
        let path = self.tmp.path().join("github.toml");
        std::fs::write(&path, document(&self.issuer)).unwrap();
        path.display().to_string()
    }
}

fn assert_token_absent(out: &Output, jwt: &str) {
    let signature = jwt.rsplit('.').next().unwrap();
    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!text.contains(jwt), "the token is in {name}: {text}");
        assert!(
            signature.len() < 16 || !text.contains(signature),
            "the token's signature is in {name}"
        );
    }
}

/// The lines of the check list.
fn check_lines(out: &Output) -> Vec<&str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with("  ok  ") || l.starts_with("  FAIL  "))
        .collect()
}

fn failed_line<'a>(out: &'a Output, name: &str) -> &'a str {
    check_lines(out)
        .into_iter()
        .find(|l| l.starts_with(&format!("  FAIL  {name}:")))
        .unwrap_or_else(|| panic!("no failing {name} check in:\n{}", out.stdout))
}

#[test]
fn a_good_token_would_log_in_and_its_jti_stays_unspent() {
    let case = Case::new();
    let jwt = case.token(|_| {});
    let out = case.test("deploy", &jwt, &[]);
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.contains("login would succeed"), "{}", out.stdout);
    assert!(!out.stdout.contains("NOT VERIFIED"), "{}", out.stdout);
    let lines = check_lines(&out);
    for name in [
        "signature",
        "exp",
        "iat",
        "jti",
        "replay",
        "iss",
        "aud",
        "ref",
        "repository_id",
        "repository_owner_id",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("  ok    {name}:"))),
            "{name} is not reported ok:\n{}",
            out.stdout
        );
    }
    assert!(
        lines.iter().all(|l| l.starts_with("  ok  ")),
        "{}",
        out.stdout
    );
    // The templated rule shows what it renders to for this token.
    assert!(
        out.stdout.contains("-> secret/data/ci/74/*"),
        "{}",
        out.stdout
    );

    // Nothing was spent: the same token still logs in, once.
    let login = case.server.put(
        "auth/jwt/login",
        None,
        &json!({"role": "deploy", "jwt": jwt}).to_string(),
    );
    assert_eq!(login.status, 200, "{:?}", login.body);
    // Now it has been used, and the test says so.
    let again = case.test("deploy", &jwt, &[]);
    assert_eq!(again.status, Some(1), "{again:?}");
    assert!(failed_line(&again, "replay").contains("already used"));

    // The audit log never holds the token either.
    let audit = std::fs::read_to_string(case.server.audit_log()).unwrap();
    assert!(
        audit.contains("vaultctl/policy-test"),
        "the test is audited"
    );
    assert!(!audit.contains(&jwt) && !audit.contains(jwt.rsplit('.').next().unwrap()));

    // JSON output: the same checks, machine-readable.
    let json_out = case.test("deploy", &case.token(|_| {}), &["--format", "json"]);
    assert_eq!(json_out.status, Some(0), "{json_out:?}");
    let parsed: Value = serde_json::from_str(&json_out.stdout).unwrap();
    assert_eq!(parsed["signature_verified"], json!(true));
    assert!(parsed["checks"].as_array().unwrap().len() >= 10);
}

#[test]
fn each_refusal_is_explained_on_the_line_of_its_binding() {
    let case = Case::new();

    let wrong_ref = case.test(
        "deploy",
        &case.token(|c| c["ref"] = json!("refs/heads/dev")),
        &[],
    );
    assert_eq!(wrong_ref.status, Some(1), "{wrong_ref:?}");
    assert!(wrong_ref.stdout.contains("login would FAIL"));
    assert_eq!(
        failed_line(&wrong_ref, "ref"),
        "  FAIL  ref: wants \"refs/heads/main\"; token has \"refs/heads/dev\""
    );
    assert_eq!(
        wrong_ref.stdout.matches("  FAIL  ").count(),
        1,
        "only the ref fails:\n{}",
        wrong_ref.stdout
    );

    let case_miss = case.test(
        "deploy",
        &case.token(|c| c["ref"] = json!("refs/heads/Main")),
        &[],
    );
    assert!(failed_line(&case_miss, "ref").contains("near miss: differs only in letter case"));

    let number = case.test(
        "deploy",
        &case.token(|c| c["repository_id"] = json!(74)),
        &[],
    );
    assert_eq!(number.status, Some(1));
    let line = failed_line(&number, "repository_id");
    assert!(
        line.contains("token has 74")
            && line.contains("the number 74 where the role binds the string \"74\""),
        "{line}"
    );

    let audience = case.test(
        "deploy",
        &case.token(|c| c["aud"] = json!(format!("{AUDIENCE}/"))),
        &[],
    );
    assert_eq!(audience.status, Some(1));
    assert!(failed_line(&audience, "aud").contains("near miss: differs only by a trailing slash"));

    let expired = case.test(
        "deploy",
        &case.token(|c| {
            let t = now();
            c["iat"] = json!(t - 3000);
            c["nbf"] = json!(t - 3000);
            c["exp"] = json!(t - 1200);
        }),
        &[],
    );
    assert_eq!(expired.status, Some(1));
    assert!(
        // The clock may tick between signing and checking: "20m ago" or "20m 1s ago".
        failed_line(&expired, "exp").contains("token has expired 20m"),
        "{}",
        expired.stdout
    );
    assert!(
        expired.stdout.contains("  ok    signature:"),
        "{}",
        expired.stdout
    );

    // Another issuer's token: its `iss` is not the role's.
    let other = TestIssuer::start();
    let foreign = other.sign("rsa1", &other.github_claims(AUDIENCE, "acme/api", "74"));
    let out = case.test("deploy", &foreign, &[]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert_eq!(
        failed_line(&out, "iss"),
        format!(
            "  FAIL  iss: wants \"{}\" (issuer `github`); token has \"{}\"",
            case.issuer.url, other.url
        )
    );

    // A payload changed after signing: the signature fails, and the claims it states are
    // explained but marked unverified.
    let good = case.token(|_| {});
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut claims = case.issuer.github_claims(AUDIENCE, "acme/api", "74");
    claims["ref"] = json!("refs/heads/release");
    let forged_payload = B64URL.encode(claims.to_string());
    parts[1] = &forged_payload;
    let forged = parts.join(".");
    let out = case.test("deploy", &forged, &[]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(out.stdout.starts_with("NOT VERIFIED"), "{}", out.stdout);
    assert!(failed_line(&out, "signature").contains("signature does not verify"));
    assert!(failed_line(&out, "ref").contains("refs/heads/release"));

    // GitHub's other subject form against a glob written for the legacy form.
    let immutable = case.test(
        "legacy-glob",
        &case.token(|c| c["sub"] = json!("repo:acme@1001/api@74:ref:refs/heads/main")),
        &[],
    );
    assert_eq!(immutable.status, Some(1));
    assert!(
        failed_line(&immutable, "sub")
            .contains("immutable form and the role binds the legacy form"),
        "{}",
        immutable.stdout
    );
}

#[test]
fn not_a_token_and_unknown_roles_are_clear_failures() {
    let case = Case::new();
    let garbage = "not-a-jwt";
    let out = case.test("deploy", garbage, &[]);
    assert_eq!(out.status, Some(1), "{out:?}");
    assert!(
        failed_line(&out, "format").contains("not a well-formed JWT"),
        "{}",
        out.stdout
    );
    let jwt = case.token(|_| {});
    let unknown = case.test("nope", &jwt, &[]);
    assert_eq!(unknown.status, Some(1), "{unknown:?}");
    assert!(
        unknown.stdout.contains("no role named `nope`"),
        "{}",
        unknown.stdout
    );
    // Stdin works as `-`.
    let out = case.server.vaultctl(
        Some(case.server.root()),
        format!("{jwt}\n").as_bytes(),
        &["policy", "test", "--role", "deploy", "--jwt", "-"],
    );
    assert_eq!(out.status, Some(0), "{out:?}");
    assert_token_absent(&out, &jwt);
}

#[test]
fn offline_the_token_is_decoded_loudly_and_usage_errors_exit_2() {
    let case = Case::new();
    let file = case.document_file();
    let jwt = case.token(|_| {});
    let out = case.test("deploy", &jwt, &["--file", &file, "--no-verify"]);
    assert_eq!(out.status, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("NOT VERIFIED"), "{}", out.stdout);
    assert!(out.stderr.contains("NOT verified"), "{}", out.stderr);
    assert!(out.stdout.contains("  ok    exp:"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("signature:"),
        "offline cannot check it"
    );

    let wrong = case.test(
        "deploy",
        &case.token(|c| c["ref"] = json!("refs/heads/dev")),
        &["--file", &file, "--no-verify"],
    );
    assert_eq!(wrong.status, Some(1), "{wrong:?}");
    assert!(failed_line(&wrong, "ref").contains("refs/heads/dev"));

    // Usage errors: 2, and nothing is tested.
    let no_flag = case.test("deploy", &jwt, &["--file", &file]);
    assert_eq!(no_flag.status, Some(2), "{no_flag:?}");
    assert!(no_flag.stderr.contains("--no-verify"), "{}", no_flag.stderr);
    assert!(no_flag.stdout.is_empty());
    let online_no_verify = case.test("deploy", &jwt, &["--no-verify"]);
    assert_eq!(online_no_verify.status, Some(2), "{online_no_verify:?}");
    let both = case.server.vaultctl(
        None,
        b"",
        &[
            "policy", "test", "--role", "deploy", "--jwt", "-", "--claims", "x.json",
        ],
    );
    assert_eq!(both.status, Some(2), "{both:?}");
    let neither = case
        .server
        .vaultctl(None, b"", &["policy", "test", "--role", "deploy"]);
    assert_eq!(neither.status, Some(2), "{neither:?}");
    let bad = case.test("deploy", "a.b", &["--file", &file, "--no-verify"]);
    assert_eq!(bad.status, Some(1), "{bad:?}");
    assert!(
        bad.stderr.contains("not three dot-separated parts"),
        "{}",
        bad.stderr
    );
}

#[test]
fn the_claims_form_exits_by_the_verdict_too() {
    let case = Case::new();
    let claims = case.tmp.path().join("claims.json");
    let mut good = case.issuer.github_claims(AUDIENCE, "acme/api", "74");
    std::fs::write(&claims, good.to_string()).unwrap();
    let args = [
        "policy",
        "test",
        "--role",
        "deploy",
        "--claims",
        claims.to_str().unwrap(),
    ];
    let ok = case.server.vaultctl(Some(case.server.root()), b"", &args);
    assert_eq!(ok.status, Some(0), "{ok:?}");
    good["repository_id"] = json!("75");
    std::fs::write(&claims, good.to_string()).unwrap();
    let fail = case.server.vaultctl(Some(case.server.root()), b"", &args);
    assert_eq!(fail.status, Some(1), "{fail:?}");
    assert!(failed_line(&fail, "repository_id").contains("\"75\""));
}

//! Pipeline identity end to end: a real test issuer (discovery + JWKS over HTTP, RS256/ES256
//! fixture keys) against a real `vaultd dev`, with GitHub- and GitLab-shaped tokens and every
//! class of forged or wrong token.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use e2e::Server;
use e2e::issuer::{IssuerMode, TestIssuer, now, unique_jti};
use serde_json::{Value, json};

const AUD: &str = "https://vault.example.com";

fn document(issuer_url: &str) -> String {
    format!(
        r#"
[issuers.ci]
issuer = "{issuer_url}"
algorithms = ["RS256", "ES256"]
max_token_lifetime = "1h"

[roles.gh-deploy]
issuer = "ci"
audiences = ["{AUD}"]
claims = {{ repository_id = "74", ref = "refs/heads/main", event_name = ["push", "workflow_dispatch"] }}
policies = ["app-read"]
ttl = "10m"
max_ttl = "30m"

[roles.gl-deploy]
issuer = "ci"
audiences = ["{AUD}"]
claims = {{ project_id = "42", ref_protected = "true" }}
policies = ["gl-read"]
ttl = "5m"

[policies.app-read]
rules = [
  {{ path = "secret/data/prod/app", capabilities = ["read"] }},
  {{ path = "secret/data/prod/shared/*", capabilities = ["read"] }},
]

[policies.gl-read]
rules = [{{ path = "secret/data/gitlab/+/config", capabilities = ["read"] }}]
"#
    )
}

struct Setup {
    server: Server,
    issuer: TestIssuer,
}

fn setup_with(env: &[(&str, &str)]) -> Setup {
    let issuer = TestIssuer::start();
    let server = Server::dev_with_env(env);
    let root = server.root().to_owned();
    let applied = server.put(
        "sys/vaultctl/policy",
        Some(&root),
        &json!({ "documents": [document(&issuer.url)] }).to_string(),
    );
    assert_eq!(applied.status, 200, "{}", applied.raw);
    for (path, value) in [
        ("prod/app", "app-secret-value-1"),
        ("prod/shared/tls", "shared-secret-value-2"),
        ("prod/other", "other-secret-value-3"),
        ("gitlab/web/config", "gitlab-secret-value-4"),
    ] {
        let r = server.put(
            &format!("secret/data/{path}"),
            Some(&root),
            &json!({"data": {"v": value}}).to_string(),
        );
        assert_eq!(r.status, 200);
    }
    Setup { server, issuer }
}

fn setup() -> Setup {
    setup_with(&[("VAULTD_JWKS_REFRESH_COOLDOWN", "1s")])
}

fn login(server: &Server, role: &str, jwt: &str) -> e2e::Resp {
    server.put(
        "auth/jwt/login",
        None,
        &json!({"role": role, "jwt": jwt}).to_string(),
    )
}

fn gh(setup: &Setup) -> Value {
    setup.issuer.github_claims(AUD, "acme/api", "74")
}

#[test]
fn github_token_logs_in_and_reads_only_its_paths() {
    let s = setup();
    let jwt = s.issuer.sign("rsa1", &gh(&s));
    let r = login(&s.server, "gh-deploy", &jwt);
    assert_eq!(r.status, 200, "{}", r.raw);
    let auth = &r.body["auth"];
    assert_eq!(auth["policies"], json!(["app-read", "default"]));
    assert_eq!(auth["metadata"]["repository"], "acme/api");
    assert_eq!(auth["metadata"]["role"], "gh-deploy");
    assert!(auth["lease_duration"].as_u64().unwrap() <= 600);
    assert_eq!(auth["renewable"], true);
    let token = auth["client_token"].as_str().unwrap();

    assert_eq!(
        s.server.get("secret/data/prod/app", Some(token)).body["data"]["data"]["v"],
        "app-secret-value-1"
    );
    assert_eq!(
        s.server
            .get("secret/data/prod/shared/tls", Some(token))
            .status,
        200
    );
    let other = s.server.get("secret/data/prod/other", Some(token));
    assert_eq!(other.status, 403);
    assert_eq!(other.errors(), vec!["permission denied"]);
    assert_eq!(
        s.server
            .put("secret/data/prod/app", Some(token), r#"{"data":{"v":"x"}}"#)
            .status,
        403
    );
    assert_eq!(
        s.server
            .get("secret/data/gitlab/web/config", Some(token))
            .status,
        403
    );
    assert_eq!(
        s.server
            .call("LIST", "secret/metadata/prod", Some(token), None)
            .status,
        403
    );

    let me = s.server.get("auth/token/lookup-self", Some(token));
    assert_eq!(me.body["data"]["meta"]["repository_id"], "74");
    assert_eq!(me.body["data"]["meta"]["ref"], "refs/heads/main");
    assert_eq!(me.body["data"]["path"], "auth/jwt/login");
    assert_eq!(me.body["data"]["role"], "gh-deploy");

    // Renewal stops at max_ttl (30m).
    let renewed = s.server.put(
        "auth/token/renew-self",
        Some(token),
        r#"{"increment":"24h"}"#,
    );
    assert!(
        renewed.body["auth"]["lease_duration"].as_u64().unwrap() <= 1800,
        "{}",
        renewed.raw
    );

    // An ES256 token from the same issuer works too.
    let es = s.issuer.sign("ec1", &gh(&s));
    assert_eq!(login(&s.server, "gh-deploy", &es).status, 200);
}

#[test]
fn gitlab_token_logs_in_and_reads_only_its_paths() {
    let s = setup();
    let jwt = s
        .issuer
        .sign("rsa1", &s.issuer.gitlab_claims(AUD, "group/web", "42"));
    let r = login(&s.server, "gl-deploy", &jwt);
    assert_eq!(r.status, 200, "{}", r.raw);
    let token = r.body["auth"]["client_token"].as_str().unwrap();
    assert_eq!(r.body["auth"]["metadata"]["project_path"], "group/web");
    assert_eq!(
        s.server
            .get("secret/data/gitlab/web/config", Some(token))
            .status,
        200
    );
    assert_eq!(
        s.server
            .get("secret/data/gitlab/web/other", Some(token))
            .status,
        403
    );
    assert_eq!(
        s.server
            .get("secret/data/gitlab/web/deep/config", Some(token))
            .status,
        403
    );
    assert_eq!(
        s.server.get("secret/data/prod/app", Some(token)).status,
        403
    );

    // An unprotected ref is refused, naming the claim.
    let mut claims = s.issuer.gitlab_claims(AUD, "group/web", "42");
    claims["ref_protected"] = json!("false");
    let r = login(&s.server, "gl-deploy", &s.issuer.sign("rsa1", &claims));
    assert_eq!(r.status, 400);
    assert!(r.errors()[0].contains("ref_protected"), "{}", r.raw);
}

/// Every forged or wrong token is refused with its reason, and nothing is issued.
#[test]
fn forged_and_wrong_tokens_are_refused_with_their_reason() {
    let s = setup();
    let base = gh(&s);
    let with = |changes: Value| {
        let mut c = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c["jti"] = json!(unique_jti());
        c
    };
    let t = now();
    let big = "x".repeat(20_000);
    let mut tampered = s.issuer.sign("rsa1", &with(json!({})));
    {
        // Swap the payload for one claiming another repository; keep the signature.
        let parts: Vec<&str> = tampered.split('.').collect();
        use base64::Engine;
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(with(json!({"repository_id": "75"})).to_string());
        tampered = format!("{}.{}.{}", parts[0], evil, parts[2]);
    }
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            TestIssuer::forge_none(&with(json!({}))),
            "unexpected algorithm",
        ),
        (
            "HS256 keyed with the public key",
            s.issuer
                .forge_hs256_with_public_key("rsa1", &with(json!({}))),
            "unexpected algorithm",
        ),
        (
            "wrong audience",
            s.issuer
                .sign("rsa1", &with(json!({"aud": "https://other.example.com"}))),
            "audience",
        ),
        (
            "substring audience",
            s.issuer
                .sign("rsa1", &with(json!({"aud": "https://vault.example"}))),
            "audience",
        ),
        (
            "superstring audience",
            s.issuer.sign(
                "rsa1",
                &with(json!({"aud": "https://vault.example.com.evil"})),
            ),
            "audience",
        ),
        (
            "no audience",
            s.issuer.sign("rsa1", &with(json!({"aud": null}))),
            "aud",
        ),
        (
            "wrong issuer",
            s.issuer.sign(
                "rsa1",
                &with(json!({"iss": "https://token.actions.githubusercontent.com"})),
            ),
            "issuer",
        ),
        (
            "expired",
            s.issuer.sign(
                "rsa1",
                &with(json!({"iat": t - 4000, "nbf": t - 4000, "exp": t - 1000})),
            ),
            "expired",
        ),
        (
            "issued in the future",
            s.issuer.sign(
                "rsa1",
                &with(json!({"iat": t + 600, "nbf": null, "exp": t + 900})),
            ),
            "future",
        ),
        (
            "not yet valid",
            s.issuer.sign("rsa1", &with(json!({"nbf": t + 600}))),
            "not before",
        ),
        (
            "no exp",
            s.issuer.sign("rsa1", &with(json!({"exp": null}))),
            "exp",
        ),
        (
            "no iat",
            s.issuer.sign("rsa1", &with(json!({"iat": null}))),
            "iat",
        ),
        (
            "exp of the wrong type",
            s.issuer
                .sign("rsa1", &with(json!({"exp": (t + 300).to_string()}))),
            "exp",
        ),
        (
            "nbf of the wrong type",
            s.issuer.sign("rsa1", &with(json!({"nbf": "0"}))),
            "nbf",
        ),
        (
            "lifetime over the cap",
            s.issuer.sign("rsa1", &with(json!({"exp": t + 7200}))),
            "lifetime",
        ),
        (
            "unknown kid",
            s.issuer.sign_with_header(
                "rsa2",
                &json!({"alg": "RS256", "kid": "rsa2"}),
                &with(json!({})),
            ),
            "unknown kid",
        ),
        (
            "no kid, several keys",
            s.issuer
                .sign_with_header("rsa1", &json!({"alg": "RS256"}), &with(json!({}))),
            "several keys",
        ),
        (
            "kid of another key",
            s.issuer.sign_with_header(
                "rsa2",
                &json!({"alg": "RS256", "kid": "rsa1"}),
                &with(json!({})),
            ),
            "signature",
        ),
        (
            "ES256 header on an RSA key",
            s.issuer.sign_with_header(
                "rsa1",
                &json!({"alg": "ES256", "kid": "rsa1"}),
                &with(json!({})),
            ),
            "signature",
        ),
        (
            "crit header",
            s.issuer.sign_with_header(
                "rsa1",
                &json!({"alg": "RS256", "kid": "rsa1", "crit": ["exp"]}),
                &with(json!({})),
            ),
            "crit",
        ),
        (
            "header member of the wrong type",
            s.issuer.sign_with_header(
                "rsa1",
                &json!({"alg": "RS256", "kid": "rsa1", "typ": 1}),
                &with(json!({})),
            ),
            "wrong JSON type",
        ),
        (
            "sub as a list",
            s.issuer.sign(
                "rsa1",
                &with(json!({"sub": ["repo:evil/x:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main"]})),
            ),
            "sub",
        ),
        ("tampered payload", tampered, "signature"),
        (
            "oversized",
            s.issuer.sign("rsa1", &with(json!({"pad": big}))),
            "larger than",
        ),
        ("garbage", "not.a.jwt".into(), "well-formed"),
        ("two parts", "abc.def".into(), "well-formed"),
        ("empty", String::new(), "missing token"),
        (
            "repository_id as a number",
            s.issuer.sign("rsa1", &with(json!({"repository_id": 74}))),
            "repository_id",
        ),
        (
            "other repository",
            s.issuer.sign("rsa1", &with(json!({"repository_id": "75"}))),
            "repository_id",
        ),
        (
            "other branch",
            s.issuer
                .sign("rsa1", &with(json!({"ref": "refs/heads/dev"}))),
            "`ref`",
        ),
        (
            "pull_request_target",
            s.issuer
                .sign("rsa1", &with(json!({"event_name": "pull_request_target"}))),
            "event_name",
        ),
        (
            "missing bound claim",
            s.issuer.sign("rsa1", &with(json!({"event_name": null}))),
            "event_name",
        ),
        (
            "no jti",
            s.issuer.sign("rsa1", &{
                let mut c = with(json!({}));
                c.as_object_mut().unwrap().remove("jti");
                c
            }),
            "jti",
        ),
    ];
    for (name, jwt, want) in &cases {
        let r = login(&s.server, "gh-deploy", jwt);
        assert_eq!(r.status, 400, "{name}: {}", r.raw);
        let message = r.errors().join(" ");
        assert!(
            message.contains(want),
            "{name}: expected {want:?} in {message:?}"
        );
        assert!(r.body["auth"].is_null(), "{name}: a token was issued");
        // The expected values of bound claims never appear in the answer.
        assert!(
            !message.contains("refs/heads/main") && !message.contains("\"74\""),
            "{name}: {message}"
        );
    }

    // A jku header pointing at an attacker's key server is never fetched.
    let attacker = TestIssuer::start();
    let jku = s.issuer.sign_with_header(
        "rsa2",
        &json!({"alg": "RS256", "kid": "rsa2", "jku": format!("{}/jwks", attacker.url), "x5u": format!("{}/x5u", attacker.url)}),
        &with(json!({})),
    );
    assert_eq!(login(&s.server, "gh-deploy", &jku).status, 400);
    assert_eq!(
        attacker.jwks_fetches(),
        0,
        "vaultd fetched an attacker-chosen URL"
    );

    // Replay: the same jti works once.
    let once = s.issuer.sign("rsa1", &with(json!({})));
    assert_eq!(login(&s.server, "gh-deploy", &once).status, 200);
    let again = login(&s.server, "gh-deploy", &once);
    assert_eq!(again.status, 400);
    assert!(
        again.errors()[0].contains("already been used"),
        "{}",
        again.raw
    );

    // Role errors.
    let good = s.issuer.sign("rsa1", &with(json!({})));
    assert_eq!(
        s.server
            .put("auth/jwt/login", None, &json!({"jwt": good}).to_string())
            .errors(),
        vec!["missing role"]
    );
    let unknown = login(&s.server, "nope", &good);
    assert!(unknown.errors()[0].contains("could not be found"));
    assert_eq!(
        s.server.put("auth/jwt/login", None, "{bad json").status,
        400
    );
    // Audience given as a list that contains ours is fine.
    let listed = s
        .issuer
        .sign("rsa1", &with(json!({"aud": ["https://other", AUD]})));
    assert_eq!(login(&s.server, "gh-deploy", &listed).status, 200);
}

#[test]
fn key_rotation_is_picked_up_and_outages_keep_cached_keys() {
    let s = setup();
    assert_eq!(
        login(&s.server, "gh-deploy", &s.issuer.sign("rsa1", &gh(&s))).status,
        200
    );
    let fetches = s.issuer.jwks_fetches();
    // Cached: no fetch for a known kid.
    assert_eq!(
        login(&s.server, "gh-deploy", &s.issuer.sign("rsa1", &gh(&s))).status,
        200
    );
    assert_eq!(s.issuer.jwks_fetches(), fetches);

    // Rotation: the issuer now publishes rsa2; a token under rsa2 triggers one refresh.
    s.issuer.publish(&["rsa2", "ec1"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = login(&s.server, "gh-deploy", &s.issuer.sign("rsa2", &gh(&s)));
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(s.issuer.jwks_fetches(), fetches + 1);

    // A flood of unknown kids does not become a flood of fetches (cooldown, single-flight).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = s.issuer.jwks_fetches();
    for i in 0..20 {
        let forged = s.issuer.sign_with_header(
            "rsa1",
            &json!({"alg": "RS256", "kid": format!("random-{i}")}),
            &gh(&s),
        );
        assert_eq!(login(&s.server, "gh-deploy", &forged).status, 400);
    }
    assert!(
        s.issuer.jwks_fetches() - before <= 2,
        "{} fetches",
        s.issuer.jwks_fetches() - before
    );

    // Outage: cached keys keep working.
    s.issuer.set_mode(IssuerMode::Down);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        login(&s.server, "gh-deploy", &s.issuer.sign("rsa2", &gh(&s))).status,
        200
    );
    let unknown =
        s.issuer
            .sign_with_header("rsa1", &json!({"alg": "RS256", "kid": "rsa1"}), &gh(&s));
    assert_eq!(login(&s.server, "gh-deploy", &unknown).status, 400);
    assert_eq!(
        login(&s.server, "gh-deploy", &s.issuer.sign("ec1", &gh(&s))).status,
        200
    );
}

#[test]
fn broken_issuers_fail_closed() {
    for mode in [IssuerMode::Down, IssuerMode::Huge] {
        let s = setup();
        s.issuer.set_mode(mode);
        let r = login(&s.server, "gh-deploy", &s.issuer.sign("rsa1", &gh(&s)));
        assert_eq!(r.status, 400, "{mode:?}: {}", r.raw);
        assert!(
            r.errors()[0].contains("keys unavailable"),
            "{mode:?}: {}",
            r.raw
        );
    }
    let s = setup();
    s.issuer.set_mode(IssuerMode::Slow);
    let started = std::time::Instant::now();
    let r = login(&s.server, "gh-deploy", &s.issuer.sign("rsa1", &gh(&s)));
    assert_eq!(r.status, 400);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "fetch not time-bounded"
    );
    // The server still serves other requests.
    assert_eq!(s.server.get("sys/health", None).status, 200);
}

#[test]
fn invalid_documents_change_nothing() {
    let s = setup();
    let root = s.server.root().to_owned();
    let before = s.server.get("sys/vaultctl/policy", Some(&root)).body["data"]["version"].clone();
    let bad_docs = [
        "[roles.x]\nissuer = \"ci\"\npolicies = [\"app-read\"]\nclaims = { repository_id = \"1\" }\n",
        "[roles.x]\nissuer = \"ci\"\naudiences = [\"a\"]\npolicies = [\"app-read\"]\n",
        "[roles.x]\nissuer = \"nope\"\naudiences = [\"a\"]\nclaims = { repository_id = \"1\" }\n",
        "[issuers.y]\nissuer = \"http://example.com\"\n",
        "[issuers.y]\nissuer = \"https://x\"\nalgorithms = [\"HS256\"]\n",
        "[policies.p]\nrules = [{ path = \"secret/*/x\", capabilities = [\"read\"] }]\n",
        "[policies.p]\nrules = [{ path = \"secret/x\", capabilities = [\"fly\"] }]\n",
        "this is not toml",
        "[unknown]\nx = 1\n",
        "[roles.x]\nissuer = \"ci\"\naudiences = [\"a\"]\nclaims = { repository_id = \"1\" }\npolicies = [\"root\"]\n",
        "[roles.x]\nissuer = \"ci\"\naudiences = [\"a\"]\nclaims = { repository = \"*/*\" }\nglob_claims = [\"repository\"]\n",
    ];
    for doc in bad_docs {
        let r = s.server.put(
            "sys/vaultctl/policy",
            Some(&root),
            &json!({"documents": [doc]}).to_string(),
        );
        assert_eq!(r.status, 400, "{doc}: {}", r.raw);
        assert!(!r.errors().is_empty());
    }
    let after = s.server.get("sys/vaultctl/policy", Some(&root)).body["data"]["version"].clone();
    assert_eq!(before, after);
    // The old document is still in force.
    let jwt = s.issuer.sign("rsa1", &gh(&s));
    assert_eq!(login(&s.server, "gh-deploy", &jwt).status, 200);
    // A non-root token may not change policy.
    let t = s.server.put(
        "auth/token/create",
        Some(&root),
        r#"{"policies":["app-read"]}"#,
    );
    let t = t.body["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.server
            .put(
                "sys/vaultctl/policy",
                Some(&t),
                &json!({"documents": ["[policies.z]\nrules = []\n"]}).to_string()
            )
            .status,
        403
    );
}

#[test]
fn audit_log_holds_logins_and_reads_without_secrets_or_tokens() {
    let mut s = setup();
    let jwt = s.issuer.sign("rsa1", &gh(&s));
    let r = login(&s.server, "gh-deploy", &jwt);
    let token = r.body["auth"]["client_token"].as_str().unwrap().to_owned();
    s.server.get("secret/data/prod/app", Some(&token));
    s.server.get("secret/data/prod/other", Some(&token));
    let mut bad = gh(&s);
    bad["ref"] = json!("refs/heads/evil");
    let denied_jwt = s.issuer.sign("rsa1", &bad);
    login(&s.server, "gh-deploy", &denied_jwt);
    s.server.terminate();
    let log = std::fs::read_to_string(s.server.audit_log()).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logins: Vec<&Value> = lines
        .iter()
        .filter(|l| l["path"] == "auth/jwt/login")
        .collect();
    assert!(logins.iter().any(|l| l["status"] == 200
        && l["role"] == "gh-deploy"
        && l["claims"]["repository"] == "acme/api"));
    let refused = logins.iter().find(|l| l["status"] == 400).unwrap();
    assert!(
        refused["reason"].as_str().unwrap().contains("ref"),
        "{refused}"
    );
    assert!(lines.iter().any(|l| l["path"] == "secret/data/prod/app"
        && l["status"] == 200
        && l["token_role"] == "gh-deploy"));
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "secret/data/prod/other" && l["status"] == 403)
    );
    for needle in [
        &jwt,
        &denied_jwt,
        &token,
        &s.server.root().to_owned(),
        &"app-secret-value-1".to_owned(),
        &"other-secret-value-3".to_owned(),
    ] {
        assert!(
            !log.contains(needle.as_str()),
            "audit log holds a secret or raw token"
        );
    }
    let stderr = std::fs::read_to_string(&s.server.stderr_log).unwrap();
    for needle in [&jwt, &token, &"app-secret-value-1".to_owned()] {
        assert!(
            !stderr.contains(needle.as_str()),
            "server log holds a secret or raw token"
        );
    }
}

#[test]
fn dev_issuer_flow_works_without_a_ci_system() {
    let server = Server::dev();
    let root = server.root().to_owned();
    server.put(
        "secret/data/dev/app",
        Some(&root),
        r#"{"data":{"API_KEY":"dev-api-key-123"}}"#,
    );
    let minted = server.put("sys/dev/oidc/token", Some(&root), "{}");
    assert_eq!(minted.status, 200, "{}", minted.raw);
    let jwt = minted.body["data"]["jwt"].as_str().unwrap();
    let r = login(&server, "dev", jwt);
    assert_eq!(r.status, 200, "{}", r.raw);
    let token = r.body["auth"]["client_token"].as_str().unwrap();
    assert_eq!(
        server.get("secret/data/dev/app", Some(token)).body["data"]["data"]["API_KEY"],
        "dev-api-key-123"
    );
    // Only root may mint.
    let t = server.put(
        "auth/token/create",
        Some(&root),
        r#"{"policies":["dev-read"]}"#,
    );
    let t = t.body["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_eq!(server.put("sys/dev/oidc/token", Some(&t), "{}").status, 403);
}

#[test]
fn production_server_has_no_dev_issuer_and_refuses_http_issuers() {
    let server = Server::production();
    let init = server.put(
        "sys/init",
        None,
        r#"{"secret_shares":1,"secret_threshold":1}"#,
    );
    let key = init.body["keys_base64"][0].as_str().unwrap().to_owned();
    let root = init.body["root_token"].as_str().unwrap().to_owned();
    server.put("sys/unseal", None, &json!({"key": key}).to_string());
    assert_eq!(
        server.put("sys/dev/oidc/token", Some(&root), "{}").status,
        404
    );
    assert_eq!(
        e2e::raw_call(&format!("{}/dev-oidc/jwks", server.addr), "GET", None, None).status,
        404
    );
    let issuer = TestIssuer::start();
    let r = server.put(
        "sys/vaultctl/policy",
        Some(&root),
        &json!({"documents": [document(&issuer.url)]}).to_string(),
    );
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(r.errors()[0].contains("vaultd dev"), "{}", r.raw);
}

#[test]
fn metrics_count_logins_denials_and_reads() {
    let s = setup();
    let root = s.server.root().to_owned();
    let commits_before = s.server.store_commit_counts(&root);
    let ok = login(&s.server, "gh-deploy", &s.issuer.sign("rsa1", &gh(&s)));
    let token = ok.body["auth"]["client_token"].as_str().unwrap().to_owned();
    s.server.get("secret/data/prod/app", Some(&token));
    let mut expired = gh(&s);
    expired["exp"] = json!(now() - 500);
    expired["iat"] = json!(now() - 600);
    login(&s.server, "gh-deploy", &s.issuer.sign("rsa1", &expired));
    login(&s.server, "made-up-role", &s.issuer.sign("rsa1", &gh(&s)));
    assert_eq!(
        s.server.get("sys/metrics?format=prometheus", None).status,
        403
    );
    let r = s.server.get("sys/metrics?format=prometheus", Some(&root));
    assert_eq!(r.status, 200);
    assert!(r.content_type.as_deref().unwrap().starts_with("text/plain"));
    let text = &r.raw;
    for line in [
        "vaultd_logins_total{role=\"gh-deploy\",outcome=\"success\"} 1",
        "vaultd_logins_total{role=\"gh-deploy\",outcome=\"denied\"} 1",
        "vaultd_logins_total{role=\"unknown\",outcome=\"denied\"} 1",
        "vaultd_login_denials_total{reason=\"expired\"} 1",
        "vaultd_login_denials_total{reason=\"unknown_role\"} 1",
        "vaultd_secret_reads_total 1",
        "vaultd_jwks_fetches_total 1",
        "vaultd_sealed 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        text.contains("vaultd_request_duration_seconds_count{route=\"login\"} 3"),
        "{text}"
    );
    assert!(!text.contains("made-up-role"));
    // The one login that succeeded made one durable commit carrying its one batch; the refused
    // ones and the read wrote nothing.
    let (commits, batches) = s.server.store_commit_counts(&root);
    assert_eq!(
        (commits - commits_before.0, batches - commits_before.1),
        (1, 1)
    );
}

#[test]
fn duplicate_member_names_in_a_signed_jwt_are_refused() {
    let setup = setup();
    let header = r#"{"alg":"RS256","typ":"JWT","kid":"rsa1"}"#;
    // The control: the same claims, signed as raw text, log in.
    let control = setup
        .issuer
        .sign_raw("rsa1", header, &gh(&setup).to_string());
    let r = login(&setup.server, "gh-deploy", &control);
    assert_eq!(r.status, 200, "the control token must log in: {}", r.raw);

    // Signed and otherwise valid: the last `repository_id` is the bound one, the first is
    // what a parser that keeps the first duplicate would see.
    let claims = gh(&setup).to_string();
    let with_duplicate = format!(
        "{{\"repository_id\":\"999\",{}",
        claims.strip_prefix('{').unwrap()
    );
    let token = setup.issuer.sign_raw("rsa1", header, &with_duplicate);
    let r = login(&setup.server, "gh-deploy", &token);
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(r.raw.contains("unique member names"), "{}", r.raw);

    let dup_header = r#"{"alg":"RS256","typ":"JWT","kid":"nope","kid":"rsa1"}"#;
    let token = setup
        .issuer
        .sign_raw("rsa1", dup_header, &gh(&setup).to_string());
    let r = login(&setup.server, "gh-deploy", &token);
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(r.raw.contains("unique member names"), "{}", r.raw);
}

#[test]
fn one_role_serves_an_organisation_with_claim_templated_paths() {
    let setup = setup();
    let root = setup.server.root().to_owned();
    setup.server.apply_policy(&format!(
        "[roles.org-ci]\nissuer = \"ci\"\naudiences = [\"{AUD}\"]\n\
         claims = {{ repository_owner_id = \"1001\" }}\npolicies = [\"per-repo\"]\n\
         [policies.per-repo]\nrules = [\n  \
           {{ path = \"secret/data/ci/{{{{claims.repository_id}}}}/*\", capabilities = [\"read\"] }},\n  \
           {{ path = \"secret/data/env/{{{{claims.environment}}}}/*\", capabilities = [\"read\"] }},\n]\n"
    ));
    for path in ["ci/74/x", "ci/75/x", "env/production/x", "env/a/x"] {
        let w = setup.server.put(
            &format!("secret/data/{path}"),
            Some(&root),
            r#"{"data":{"v":"1"}}"#,
        );
        assert_eq!(w.status, 200, "{}", w.raw);
    }
    let login_as = |repo_id: &str, environment: Value| {
        let mut claims = setup.issuer.github_claims(AUD, "acme/api", repo_id);
        claims["environment"] = environment;
        let r = login(&setup.server, "org-ci", &setup.issuer.sign("rsa1", &claims));
        assert_eq!(r.status, 200, "{}", r.raw);
        r.body["auth"]["client_token"].as_str().unwrap().to_owned()
    };
    // Repository 74 reads its own folder only.
    let t74 = login_as("74", json!("production"));
    assert_eq!(
        setup.server.get("secret/data/ci/74/x", Some(&t74)).status,
        200
    );
    assert_eq!(
        setup.server.get("secret/data/ci/75/x", Some(&t74)).status,
        403
    );
    assert_eq!(
        setup
            .server
            .get("secret/data/env/production/x", Some(&t74))
            .status,
        200
    );
    let t75 = login_as("75", json!("production"));
    assert_eq!(
        setup.server.get("secret/data/ci/75/x", Some(&t75)).status,
        200
    );
    assert_eq!(
        setup.server.get("secret/data/ci/74/x", Some(&t75)).status,
        403
    );
    // Values a path cannot hold match nothing.
    for hostile in [
        json!("a/../production"),
        json!("*"),
        json!("+"),
        json!(""),
        json!(7.5),
    ] {
        let t = login_as("74", hostile.clone());
        for path in ["env/production/x", "env/a/x"] {
            assert_eq!(
                setup
                    .server
                    .get(&format!("secret/data/{path}"), Some(&t))
                    .status,
                403,
                "environment {hostile} read {path}"
            );
        }
        // The rest of the policy still works for that token.
        assert_eq!(
            setup.server.get("secret/data/ci/74/x", Some(&t)).status,
            200
        );
    }
    // A token that did not come from a JWT login never matches a templated rule.
    let plain = setup.server.put(
        "auth/token/create",
        Some(&root),
        r#"{"policies":["per-repo"]}"#,
    );
    let plain = plain.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        setup.server.get("secret/data/ci/74/x", Some(&plain)).status,
        403
    );
    // A templated deny is refused when the document loads.
    let refused = setup.server.put(
        "sys/vaultctl/policy",
        Some(&root),
        &json!({"documents": ["[policies.bad]\nrules = [{ path = \"secret/data/{{claims.sub}}\", capabilities = [\"deny\"] }]\n"]}).to_string(),
    );
    assert_eq!(refused.status, 400, "{}", refused.raw);
    assert!(
        refused.raw.contains("cannot be templated"),
        "{}",
        refused.raw
    );
}

#[test]
fn both_github_subject_forms_log_in_to_a_role_bound_by_sub() {
    let setup = setup();
    setup.server.apply_policy(&format!(
        "[roles.by-sub]\nissuer = \"ci\"\naudiences = [\"{AUD}\"]\n\
         claims = {{ sub = \"repo:acme/api:ref:refs/heads/main\" }}\npolicies = [\"app-read\"]\n"
    ));
    let legacy = gh(&setup);
    let r = login(&setup.server, "by-sub", &setup.issuer.sign("rsa1", &legacy));
    assert_eq!(r.status, 200, "legacy form: {}", r.raw);
    // The immutable form of the same repository (ids are the token's own claims).
    let mut immutable = gh(&setup);
    immutable["sub"] = json!("repo:acme@1001/api@74:ref:refs/heads/main");
    let r = login(
        &setup.server,
        "by-sub",
        &setup.issuer.sign("rsa1", &immutable),
    );
    assert_eq!(r.status, 200, "immutable form: {}", r.raw);
    // Ids that are not the token's own derive nothing.
    let mut forged = gh(&setup);
    forged["sub"] = json!("repo:acme@9/api@9:ref:refs/heads/main");
    let r = login(&setup.server, "by-sub", &setup.issuer.sign("rsa1", &forged));
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(r.raw.contains("claim `sub` does not match"), "{}", r.raw);
}

#[test]
fn newer_github_and_gitlab_claims_can_be_bound_with_their_json_types() {
    let setup = setup();
    setup.server.apply_policy(&format!(
        "[roles.gh-new]\nissuer = \"ci\"\naudiences = [\"{AUD}\"]\n\
         claims = {{ repository_id = \"74\", check_run_id = \"31337\", enterprise = \"acme-ent\", \
                     enterprise_id = \"55\", repo_property_team = \"payments\" }}\n\
         policies = [\"app-read\"]\n\
         [roles.gl-new]\nissuer = \"ci\"\naudiences = [\"{AUD}\"]\n\
         claims = {{ project_id = \"42\", project_namespace_id = \"72\", \
                     ci_config_ref_uri = \"gitlab.example.com/grp/app//.gitlab-ci.yml@refs/heads/main\", \
                     ci_config_sha = \"abc123\", deployment_tier = \"production\", \
                     environment_action = \"start\", runner_id = 5, groups_direct = \"release\" }}\n\
         policies = [\"gl-read\"]\n"
    ));
    let mut gh_claims = gh(&setup);
    for (k, v) in [
        ("check_run_id", json!("31337")),
        ("enterprise", json!("acme-ent")),
        ("enterprise_id", json!("55")),
        ("repo_property_team", json!("payments")),
    ] {
        gh_claims[k] = v;
    }
    let r = login(
        &setup.server,
        "gh-new",
        &setup.issuer.sign("rsa1", &gh_claims),
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let mut gl = setup.issuer.gitlab_claims(AUD, "grp/app", "42");
    for (k, v) in [
        ("project_namespace_id", json!("72")),
        (
            "ci_config_ref_uri",
            json!("gitlab.example.com/grp/app//.gitlab-ci.yml@refs/heads/main"),
        ),
        ("ci_config_sha", json!("abc123")),
        ("deployment_tier", json!("production")),
        ("environment_action", json!("start")),
        ("runner_id", json!(5)),
        ("groups_direct", json!(["dev", "release"])),
    ] {
        gl[k] = v;
    }
    let r = login(&setup.server, "gl-new", &setup.issuer.sign("rsa1", &gl));
    assert_eq!(r.status, 200, "{}", r.raw);
    // Types are kept: runner_id as a string, or a team the list does not hold, is refused.
    for (k, v, why) in [
        ("runner_id", json!("5"), "has the wrong type"),
        ("groups_direct", json!(["dev"]), "does not match"),
        ("deployment_tier", json!("staging"), "does not match"),
    ] {
        let mut bad = setup.issuer.gitlab_claims(AUD, "grp/app", "42");
        for (k2, v2) in gl.as_object().unwrap() {
            if !bad.as_object().unwrap().contains_key(k2) {
                bad[k2] = v2.clone();
            }
        }
        bad[k] = v;
        let r = login(&setup.server, "gl-new", &setup.issuer.sign("rsa1", &bad));
        assert_eq!(r.status, 400, "{k}: {}", r.raw);
        assert!(r.raw.contains(k), "{k}: {}", r.raw);
        assert!(r.raw.contains(why), "{k}: {}", r.raw);
    }
}

//! Identity tokens: vaultd as an OIDC provider. Minted tokens verify with a standard JWT
//! library that knows only vaultd's discovery URL (what a cloud provider does), carry the
//! login's templated claims, survive a key rotation until `verification_ttl`, and bad input
//! changes nothing.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use std::process::Command;

use e2e::Server;
use e2e::issuer::TestIssuer;
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};

/// Verifies `token` the way a relying party does: discovery → `jwks_uri` → the key with the
/// token's `kid` → signature, `iss`, `aud`, `exp`.
fn verify_like_a_cloud(discovery_url: &str, token: &str, audience: &str) -> Result<Value, String> {
    vaultd::oidc::jwt_crypto::install();
    let discovery: Value = ureq::get(discovery_url)
        .call()
        .map_err(|e| e.to_string())?
        .body_mut()
        .read_json()
        .map_err(|e| e.to_string())?;
    let jwks: JwkSet = ureq::get(discovery["jwks_uri"].as_str().unwrap())
        .call()
        .map_err(|e| e.to_string())?
        .body_mut()
        .read_json()
        .map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let jwk = jwks
        .find(header.kid.as_deref().unwrap_or_default())
        .ok_or("no published key has the token's kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[discovery["issuer"].as_str().unwrap()]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

fn discovery_url(server: &Server) -> String {
    server.url("identity/oidc/.well-known/openid-configuration")
}

fn write(server: &Server, path: &str, body: Value) -> e2e::Resp {
    server.put(path, Some(server.root()), &body.to_string())
}

fn mint(server: &Server, token: &str, role: &str) -> e2e::Resp {
    server.get(&format!("identity/oidc/token/{role}"), Some(token))
}

#[test]
fn hvac_drives_the_identity_engine() {
    let server = Server::dev();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/hvac_identity.py");
    let out = Command::new("python3")
        .arg(script)
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", server.root())
        .output()
        .expect("python3 with hvac is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hvac failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let claims: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(claims["aud"], json!("sts.amazonaws.com"));
    assert_eq!(claims["team"], json!("platform"));
    assert!(
        claims["sub"].as_str().unwrap().starts_with("token:"),
        "{claims}"
    );
}

#[test]
fn a_pipeline_token_gets_templated_claims_that_verify_from_discovery() {
    let issuer = TestIssuer::start();
    let server = Server::dev();
    server.apply_policy(&format!(
        r#"
[issuers.github]
issuer = "{}"

[roles.deploy]
issuer = "github"
audiences = ["https://vault.example.com"]
claims = {{ repository_id = "74", ref = "refs/heads/main" }}
policies = ["cloud"]
ttl = "10m"

[policies.cloud]
rules = [{{ path = "identity/oidc/token/aws-deploy", capabilities = ["read"] }}]
"#,
        issuer.url
    ));
    assert_eq!(
        write(
            &server,
            "identity/oidc/key/ci",
            json!({"allowed_client_ids": ["sts.amazonaws.com"]})
        )
        .status,
        204
    );
    let template = json!({
        "repository": "{{claims.repository}}",
        "environment": "{{claims.environment}}",
        "deploy": "{{claims.repository}}@{{claims.ref}}",
        "vaultctl_role": "{{role}}",
        "missing": "{{claims.no_such_claim}}",
    });
    let role = write(
        &server,
        "identity/oidc/role/aws-deploy",
        json!({"key": "ci", "client_id": "sts.amazonaws.com", "ttl": "1h", "template": template.to_string()}),
    );
    assert_eq!(role.status, 204, "{:?}", role.body);

    let jwt = issuer.sign(
        "rsa1",
        &issuer.github_claims("https://vault.example.com", "acme/api", "74"),
    );
    let login = server.put(
        "auth/jwt/login",
        None,
        &json!({"role": "deploy", "jwt": jwt}).to_string(),
    );
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let minted = mint(&server, &token, "aws-deploy");
    assert_eq!(minted.status, 200, "{:?}", minted.body);
    let id_token = minted.body["data"]["token"].as_str().unwrap();
    // The role asked for 1h, the vaultd token lives 10m: the identity token does not outlive it.
    let ttl = minted.body["data"]["ttl"].as_u64().unwrap();
    assert!((590..=600).contains(&ttl), "{ttl}");
    let claims = verify_like_a_cloud(&discovery_url(&server), id_token, "sts.amazonaws.com")
        .expect("verifies from discovery alone");
    assert_eq!(
        claims["iss"],
        json!(format!("{}/v1/identity/oidc", server.addr))
    );
    assert_eq!(
        claims["sub"],
        json!("github:repo:acme/api:ref:refs/heads/main")
    );
    assert_eq!(claims["repository"], json!("acme/api"));
    assert_eq!(claims["environment"], json!("production"));
    assert_eq!(claims["deploy"], json!("acme/api@refs/heads/main"));
    assert_eq!(claims["vaultctl_role"], json!("deploy"));
    assert!(claims.get("missing").is_none(), "{claims}");
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 600);
    assert!(
        verify_like_a_cloud(&discovery_url(&server), id_token, "someone-else").is_err(),
        "another audience is refused"
    );

    // The policy decides who may mint: no rule, no token; and the role's path only.
    assert_eq!(mint(&server, &token, "other").status, 403);
    let child = server.put(
        "auth/token/create",
        Some(server.root()),
        &json!({"policies": ["default"]}).to_string(),
    );
    let plain = child.body["auth"]["client_token"].as_str().unwrap();
    assert_eq!(mint(&server, plain, "aws-deploy").status, 403);

    // Metadata given to `auth/token/create` vouches for no identity: a token whose creator
    // wrote a CI identity into its `meta` mints as itself, with none of those claims.
    let forged = server.put(
        "auth/token/create",
        Some(server.root()),
        &json!({"policies": ["cloud"], "meta": {
            "issuer": "github", "sub": "repo:victim/app:ref:refs/heads/main",
            "repository": "victim/app", "ref": "refs/heads/main", "environment": "production",
        }})
        .to_string(),
    );
    assert_eq!(forged.status, 200, "{:?}", forged.body);
    let forged_token = forged.body["auth"]["client_token"].as_str().unwrap();
    let accessor = forged.body["auth"]["accessor"].as_str().unwrap();
    let minted = mint(&server, forged_token, "aws-deploy");
    assert_eq!(minted.status, 200, "{:?}", minted.body);
    let claims = verify_like_a_cloud(
        &discovery_url(&server),
        minted.body["data"]["token"].as_str().unwrap(),
        "sts.amazonaws.com",
    )
    .expect("verifies");
    assert_eq!(claims["sub"], json!(format!("token:{accessor}")));
    for claim in ["repository", "environment", "deploy", "vaultctl_role"] {
        assert!(
            claims.get(claim).is_none(),
            "{claim} came from meta: {claims}"
        );
    }
}

#[test]
fn rotation_keeps_old_tokens_verifiable_until_verification_ttl() {
    let server = Server::dev();
    write(
        &server,
        "identity/oidc/key/ci",
        json!({"algorithm": "EdDSA", "allowed_client_ids": ["*"], "verification_ttl": "3s"}),
    );
    write(
        &server,
        "identity/oidc/role/r",
        json!({"key": "ci", "client_id": "aud-1"}),
    );
    let before = mint(&server, server.root(), "r");
    let old = before.body["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        write(&server, "identity/oidc/key/ci/rotate", json!({})).status,
        204
    );
    let after = mint(&server, server.root(), "r");
    let new = after.body["data"]["token"].as_str().unwrap().to_owned();
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(kid(&old), kid(&new), "new tokens use the new key");
    verify_like_a_cloud(&discovery_url(&server), &old, "aud-1")
        .expect("a token minted before the rotation still verifies");
    verify_like_a_cloud(&discovery_url(&server), &new, "aud-1").expect("new token verifies");
    std::thread::sleep(std::time::Duration::from_millis(3200));
    let err = verify_like_a_cloud(&discovery_url(&server), &old, "aud-1")
        .expect_err("after verification_ttl the old key is withdrawn");
    assert!(err.contains("kid"), "{err}");
    verify_like_a_cloud(&discovery_url(&server), &new, "aud-1").expect("new token still verifies");

    // Public documents: no token needed, briefly cacheable.
    let keys = e2e::raw_call(
        &server.url("identity/oidc/.well-known/keys"),
        "GET",
        None,
        None,
    );
    assert_eq!(keys.status, 200);
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys.cache_control.as_deref(), Some("public, max-age=60"));
}

#[test]
fn rs256_keys_come_from_an_operator_pkcs8_file() {
    let server = Server::dev();
    let dir = tempfile::tempdir().unwrap();
    let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rsa1.pem");
    let key_file = dir.path().join("identity.pem");
    std::fs::copy(pem, &key_file).unwrap();
    let no_file = write(
        &server,
        "identity/oidc/key/rsa",
        json!({"algorithm": "RS256"}),
    );
    assert_eq!(no_file.status, 400);
    assert!(
        no_file.body.to_string().contains("key_file"),
        "{:?}",
        no_file.body
    );
    let created = write(
        &server,
        "identity/oidc/key/rsa",
        json!({"algorithm": "RS256", "key_file": key_file, "allowed_client_ids": ["azure"]}),
    );
    assert_eq!(created.status, 204, "{:?}", created.body);
    write(
        &server,
        "identity/oidc/role/az",
        json!({"key": "rsa", "client_id": "azure", "ttl": 300}),
    );
    let minted = mint(&server, server.root(), "az");
    let token = minted.body["data"]["token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token).unwrap().alg,
        jsonwebtoken::Algorithm::RS256
    );
    verify_like_a_cloud(&discovery_url(&server), token, "azure").expect("RS256 verifies");
    // Rotating without a new key in the file is refused: it would not change the key.
    let same = write(&server, "identity/oidc/key/rsa/rotate", json!({}));
    assert_eq!(same.status, 400);
    assert!(
        same.body.to_string().contains("already in use"),
        "{:?}",
        same.body
    );
    // The private key is never returned.
    let read = server.get("identity/oidc/key/rsa", Some(server.root()));
    let text = read.body.to_string();
    assert!(!text.contains("MII") && !text.contains("private"), "{text}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let server = Server::dev();
    let refuse = |path: &str, body: Value, needle: &str| {
        let out = write(&server, path, body.clone());
        assert_eq!(out.status, 400, "{path} {body}: {:?}", out.body);
        assert!(
            out.body.to_string().contains(needle),
            "{path}: {:?} lacks {needle:?}",
            out.body
        );
    };
    refuse(
        "identity/oidc/key/k",
        json!({"algorithm": "HS256"}),
        "not supported",
    );
    refuse(
        "identity/oidc/key/k",
        json!({"rotation_period": "soon"}),
        "rotation_period",
    );
    refuse(
        "identity/oidc/role/r",
        json!({"key": "nope"}),
        "does not exist",
    );
    write(
        &server,
        "identity/oidc/key/k",
        json!({"allowed_client_ids": ["a"]}),
    );
    refuse(
        "identity/oidc/role/r",
        json!({"key": "k", "client_id": "b"}),
        "does not allow",
    );
    for claim in ["aud", "sub", "iss", "exp", "iat", "nbf", "jti"] {
        refuse(
            "identity/oidc/role/r",
            json!({"key": "k", "client_id": "a", "template": json!({claim: "x"}).to_string()}),
            claim,
        );
    }
    refuse(
        "identity/oidc/role/r",
        json!({"key": "k", "client_id": "a", "template": "{\"x\": \"{{identity.entity.id}}\"}"}),
        "placeholder",
    );
    refuse(
        "identity/oidc/role/r",
        json!({"key": "k", "client_id": "a", "ttl": "48h"}),
        "ttl",
    );
    refuse(
        "identity/oidc/config",
        json!({"issuer": "ftp://x"}),
        "issuer",
    );
    let unknown = write(&server, "identity/oidc/role/r", json!({"colour": "blue"}));
    assert_eq!(unknown.status, 400);
    // None of it created the role.
    assert_eq!(
        server
            .get("identity/oidc/role/r", Some(server.root()))
            .status,
        404
    );
    assert_eq!(mint(&server, server.root(), "r").status, 404);
    // A key in use cannot be deleted.
    write(
        &server,
        "identity/oidc/role/r",
        json!({"key": "k", "client_id": "a"}),
    );
    let delete = server.call("DELETE", "identity/oidc/key/k", Some(server.root()), None);
    assert_eq!(delete.status, 400, "{:?}", delete.body);
    assert!(
        delete
            .body
            .to_string()
            .contains("referenced by these roles: r")
    );
}

/// A local stand-in for AWS STS (`AssumeRoleWithWebIdentity`) and GCP STS (`POST /v1/token`,
/// a token exchange): answers only for a token that verifies against vaultd's discovery
/// document, for the expected audience (and, for AWS, role).
struct StsStandIn {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl StsStandIn {
    fn start(discovery: String, role_arn: &'static str) -> StsStandIn {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let gcp = request_line.starts_with("POST /v1/token ");
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let form: std::collections::BTreeMap<String, String> =
                    String::from_utf8_lossy(&body)
                        .split('&')
                        .filter_map(|pair| pair.split_once('='))
                        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
                        .collect();
                if gcp {
                    // GCP's STS: an RFC 8693 token exchange, the subject token from the file.
                    let verdict = match (
                        form.get("grant_type").map(String::as_str),
                        form.get("subject_token_type").map(String::as_str),
                    ) {
                        (
                            Some("urn:ietf:params:oauth:grant-type:token-exchange"),
                            Some("urn:ietf:params:oauth:token-type:jwt"),
                        ) => verify_like_a_cloud(
                            &discovery,
                            form.get("subject_token").map_or("", String::as_str),
                            form.get("audience").map_or("", String::as_str),
                        ),
                        other => Err(format!("unexpected exchange {other:?}")),
                    };
                    let (status, body) = match verdict {
                        Ok(claims) => {
                            record
                                .lock()
                                .unwrap()
                                .push(json!({"claims": claims, "audience": form.get("audience")}));
                            (
                                "200 OK",
                                json!({"access_token": "ya29.stand-in", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3600}),
                            )
                        }
                        Err(why) => (
                            "400 Bad Request",
                            json!({"error": "invalid_grant", "error_description": why}),
                        ),
                    };
                    let body = body.to_string();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                }
                let verdict = match form.get("Action").map(String::as_str) {
                    Some("AssumeRoleWithWebIdentity")
                        if form.get("RoleArn").map(String::as_str) == Some(role_arn) =>
                    {
                        verify_like_a_cloud(
                            &discovery,
                            form.get("WebIdentityToken").map_or("", String::as_str),
                            "sts.amazonaws.com",
                        )
                    }
                    other => Err(format!(
                        "unexpected request {other:?} {:?}",
                        form.get("RoleArn")
                    )),
                };
                let (status, xml) = match verdict {
                    Ok(claims) => {
                        record.lock().unwrap().push(
                            json!({"claims": claims, "session": form.get("RoleSessionName")}),
                        );
                        (
                            "200 OK",
                            format!(
                                "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult>\
                             <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience>\
                             <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/deploy/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser>\
                             <Credentials><AccessKeyId>ASIAVAULTCTLTEST</AccessKeyId><SecretAccessKey>stand-in-secret</SecretAccessKey>\
                             <SessionToken>stand-in-session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>\
                             <Provider>vaultd</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>\
                             </AssumeRoleWithWebIdentityResponse>",
                                record.lock().unwrap().len()
                            ),
                        )
                    }
                    Err(why) => (
                        "400 Bad Request",
                        format!(
                            "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>{why}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
                        ),
                    ),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                    xml.len()
                );
            }
        });
        StsStandIn { url, seen }
    }
}

#[test]
fn boto3_assumes_an_aws_role_with_the_identity_token_exec_minted() {
    let server = Server::dev();
    write(
        &server,
        "identity/oidc/key/aws",
        json!({"allowed_client_ids": ["sts.amazonaws.com"]}),
    );
    write(
        &server,
        "identity/oidc/role/aws-deploy",
        json!({"key": "aws", "client_id": "sts.amazonaws.com", "ttl": "15m",
               "template": json!({"pipeline": "{{claims.repository}}"}).to_string()}),
    );
    const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/deploy";
    let sts = StsStandIn::start(discovery_url(&server), ROLE_ARN);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/boto3_web_identity.py");
    let out = Command::new(e2e::binary("vaultctl"))
        .args([
            "exec",
            "--identity-token",
            "aws-deploy",
            "--aws-role-arn",
            ROLE_ARN,
            "--",
            "python3",
            script,
        ])
        .env("VAULTCTL_ADDR", &server.addr)
        .env("VAULTCTL_TOKEN", server.root())
        .env("AWS_ENDPOINT_URL_STS", &sts.url)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("GITHUB_RUN_ID", "4242")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("access key: ASIAVAULTCTLTEST"), "{stdout}");
    // The token itself is masked in the command's output.
    let token_line = stdout.lines().find(|l| l.starts_with("token:")).unwrap();
    assert!(!token_line.contains("eyJ"), "{token_line}");
    // The token file is gone once exec is done.
    let file = stdout
        .lines()
        .find_map(|l| l.strip_prefix("token file: "))
        .unwrap();
    assert!(!std::path::Path::new(file).exists(), "{file} left behind");
    // STS saw one verified token naming the role's claims and the CI run.
    let seen = sts.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["session"], json!("vaultctl-4242"));
    assert_eq!(seen[0]["claims"]["aud"], json!("sts.amazonaws.com"));
}

#[test]
fn exec_refuses_an_identity_role_it_may_not_use_and_leaves_no_file() {
    let server = Server::dev();
    let dir = tempfile::tempdir().unwrap();
    let child = server.put(
        "auth/token/create",
        Some(server.root()),
        &json!({"policies": ["default"]}).to_string(),
    );
    let plain = child.body["auth"]["client_token"].as_str().unwrap();
    let out = Command::new(e2e::binary("vaultctl"))
        .args(["exec", "--identity-token", "nope", "--", "true"])
        .env("VAULTCTL_ADDR", &server.addr)
        .env("VAULTCTL_TOKEN", plain)
        .env("TMPDIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Presets need the token they point at: a usage error.
    let out = Command::new(e2e::binary("vaultctl"))
        .args(["exec", "--aws-role-arn", "arn:x", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn google_auth_exchanges_the_identity_token_through_the_external_account_file() {
    let server = Server::dev();
    const AUDIENCE: &str = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/vaultd";
    write(
        &server,
        "identity/oidc/key/gcp",
        json!({"allowed_client_ids": [AUDIENCE]}),
    );
    write(
        &server,
        "identity/oidc/role/gcp-deploy",
        json!({"key": "gcp", "client_id": AUDIENCE, "ttl": "10m"}),
    );
    let sts = StsStandIn::start(discovery_url(&server), "unused");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/clients/google_external_account.py"
    );
    let token_url = format!("{}/v1/token", sts.url);
    let out = Command::new(e2e::binary("vaultctl"))
        .args([
            "exec",
            "--identity-token",
            "gcp-deploy",
            "--gcp-audience",
            AUDIENCE,
            "--gcp-token-url",
            &token_url,
            "--",
            "python3",
            script,
        ])
        .env("VAULTCTL_ADDR", &server.addr)
        .env("VAULTCTL_TOKEN", server.root())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("access token: ya29.stand-in"), "{stdout}");
    let file = stdout
        .lines()
        .find_map(|l| l.strip_prefix("credentials file: "))
        .unwrap();
    assert!(!std::path::Path::new(file).exists(), "{file} left behind");
    let seen = sts.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["claims"]["aud"], json!(AUDIENCE));
}

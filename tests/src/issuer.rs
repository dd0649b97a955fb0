//! A real OIDC issuer for tests: serves discovery and a JWKS over HTTP on loopback and signs
//! RS256 and ES256 JWTs with fixture keys (`tests/fixtures/`). Also forges the broken tokens the
//! security tests need (alg `none`, HS256 keyed with the public key, bad headers).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ring::signature::{self, KeyPair};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How the issuer's HTTP endpoints behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerMode {
    Normal,
    /// Every request answers 500.
    Down,
    /// The JWKS is 5 MB of junk.
    Huge,
    /// Responses arrive after 20 s.
    Slow,
}

enum KeyKind {
    Rsa(signature::RsaKeyPair),
    Ec(signature::EcdsaKeyPair),
}

struct FixtureKey {
    kid: String,
    kind: KeyKind,
}

struct State {
    published: Vec<String>,
    mode: IssuerMode,
    jwks_fetches: usize,
    /// Claims (minus aud/time/jti) the simulated GitHub token service signs.
    github_template: Value,
}

/// The `ACTIONS_ID_TOKEN_REQUEST_TOKEN` the simulated GitHub service expects.
pub const GITHUB_REQUEST_TOKEN: &str = "gh-request-token-for-tests";

fn sign_rsa(pair: &signature::RsaKeyPair, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa1"});
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public().modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{signing_input}.{}", B64URL.encode(sig))
}

pub struct TestIssuer {
    pub url: String,
    keys: Vec<FixtureKey>,
    state: Arc<Mutex<State>>,
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}.pem", env!("CARGO_MANIFEST_DIR"));
    pem_to_der(&std::fs::read_to_string(path).unwrap())
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl TestIssuer {
    /// Starts on a random loopback port, publishing `rsa1` and `ec1`.
    pub fn start() -> TestIssuer {
        let rng = ring::rand::SystemRandom::new();
        let keys = vec![
            FixtureKey {
                kid: "rsa1".into(),
                kind: KeyKind::Rsa(signature::RsaKeyPair::from_pkcs8(&fixture("rsa1")).unwrap()),
            },
            FixtureKey {
                kid: "rsa2".into(),
                kind: KeyKind::Rsa(signature::RsaKeyPair::from_pkcs8(&fixture("rsa2")).unwrap()),
            },
            FixtureKey {
                kid: "ec1".into(),
                kind: KeyKind::Ec(
                    signature::EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        &fixture("ec1"),
                        &rng,
                    )
                    .unwrap(),
                ),
            },
        ];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            published: vec!["rsa1".into(), "ec1".into()],
            mode: IssuerMode::Normal,
            jwks_fetches: 0,
            github_template: Value::Null,
        }));
        let issuer = TestIssuer {
            url: url.clone(),
            keys,
            state: state.clone(),
        };
        let jwks_by_kid: Vec<(String, Value)> = issuer
            .keys
            .iter()
            .map(|k| (k.kid.clone(), jwk(k)))
            .collect();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let state = state.clone();
                let jwks_by_kid = jwks_by_kid.clone();
                let github_key = signature::RsaKeyPair::from_pkcs8(&fixture("rsa1")).unwrap();
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut authorization = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if lower.starts_with("authorization:") {
                            authorization = line["authorization:".len()..].trim().to_owned();
                        }
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    // GitHub's ID token service: `?audience=` picks `aud`; the request
                    // token must be presented as a bearer token.
                    if let Some(query) = path.strip_prefix("/github-token") {
                        let st = state.lock().unwrap();
                        let (status, text) = if st.mode == IssuerMode::Down {
                            ("500 Internal Server Error", "down".to_owned())
                        } else if !authorization
                            .eq_ignore_ascii_case(&format!("bearer {GITHUB_REQUEST_TOKEN}"))
                        {
                            ("401 Unauthorized", "{}".to_owned())
                        } else {
                            let audience = query
                                .split(['?', '&'])
                                .find_map(|p| p.strip_prefix("audience="))
                                .map(|a| a.replace("%3A", ":").replace("%2F", "/"))
                                .unwrap_or_else(|| "https://github.com/acme".to_owned());
                            let mut claims = st.github_template.clone();
                            let now = now();
                            claims["aud"] = json!(audience);
                            claims["jti"] = json!(unique_jti());
                            claims["iat"] = json!(now);
                            claims["nbf"] = json!(now);
                            claims["exp"] = json!(now + 300);
                            (
                                "200 OK",
                                json!({"value": sign_rsa(&github_key, &claims)}).to_string(),
                            )
                        };
                        drop(st);
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                            text.len()
                        );
                        return;
                    }
                    let (mode, body) = {
                        let mut st = state.lock().unwrap();
                        let body = match path.as_str() {
                            "/.well-known/openid-configuration" => Some(json!({
                                "issuer": url,
                                "jwks_uri": format!("{url}/jwks"),
                                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                            })),
                            "/jwks" => {
                                st.jwks_fetches += 1;
                                let keys: Vec<Value> = jwks_by_kid
                                    .iter()
                                    .filter(|(kid, _)| st.published.contains(kid))
                                    .map(|(_, j)| j.clone())
                                    .collect();
                                Some(json!({ "keys": keys }))
                            }
                            _ => None,
                        };
                        (st.mode, body)
                    };
                    let (status, text) = match (mode, body) {
                        (IssuerMode::Down, _) => ("500 Internal Server Error", "down".to_owned()),
                        (_, None) => ("404 Not Found", "{}".to_owned()),
                        (IssuerMode::Huge, Some(_)) if path == "/jwks" => (
                            "200 OK",
                            format!("{{\"keys\":[\"{}\"]}}", "A".repeat(5_000_000)),
                        ),
                        (IssuerMode::Slow, Some(b)) => {
                            std::thread::sleep(Duration::from_secs(20));
                            ("200 OK", b.to_string())
                        }
                        (_, Some(b)) => ("200 OK", b.to_string()),
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                });
            }
        });
        issuer
    }

    /// Sets the claims the simulated GitHub token service issues (aud, times, jti are filled in).
    pub fn set_github_claims(&self, claims: Value) {
        self.state.lock().unwrap().github_template = claims;
    }

    /// `ACTIONS_ID_TOKEN_REQUEST_URL` for the simulated GitHub token service.
    pub fn github_request_url(&self) -> String {
        format!("{}/github-token?api-version=2.0", self.url)
    }

    pub fn set_mode(&self, mode: IssuerMode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Which fixture keys the JWKS lists.
    pub fn publish(&self, kids: &[&str]) {
        self.state.lock().unwrap().published = kids.iter().map(|k| (*k).to_owned()).collect();
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }

    /// Writes the published key set to `path`, for servers that must not fetch it over plain
    /// HTTP (production replicas take it as an issuer's `jwks_file`).
    pub fn write_jwks_file(&self, path: &std::path::Path) {
        let jwks = ureq::get(&format!("{}/jwks", self.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        std::fs::write(path, jwks).unwrap();
    }

    /// Signs `claims` with fixture key `kid` under a standard header.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let key = self.keys.iter().find(|k| k.kid == kid).unwrap();
        let alg = match key.kind {
            KeyKind::Rsa(_) => "RS256",
            KeyKind::Ec(_) => "ES256",
        };
        self.sign_with_header(kid, &json!({"alg": alg, "typ": "JWT", "kid": kid}), claims)
    }

    /// Signs with fixture key `kid` under an arbitrary header (which may lie about alg/kid).
    pub fn sign_with_header(&self, kid: &str, header: &Value, claims: &Value) -> String {
        self.sign_raw(kid, &header.to_string(), &claims.to_string())
    }

    /// Signs header and payload given as JSON text, exactly as written (e.g. with a member
    /// name twice, which a `Value` cannot hold).
    pub fn sign_raw(&self, kid: &str, header: &str, payload: &str) -> String {
        let key = self.keys.iter().find(|k| k.kid == kid).unwrap();
        let signing_input = format!("{}.{}", B64URL.encode(header), B64URL.encode(payload));
        let rng = ring::rand::SystemRandom::new();
        let sig = match &key.kind {
            KeyKind::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    signing_input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
            KeyKind::Ec(pair) => pair
                .sign(&rng, signing_input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        format!("{signing_input}.{}", B64URL.encode(sig))
    }

    /// The classic confusion attack: HS256 keyed with the issuer's public RSA key bytes.
    pub fn forge_hs256_with_public_key(&self, kid: &str, claims: &Value) -> String {
        let key = self.keys.iter().find(|k| k.kid == kid).unwrap();
        let KeyKind::Rsa(pair) = &key.kind else {
            panic!("rsa key needed")
        };
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let hkey = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, pair.public_key().as_ref());
        let tag = ring::hmac::sign(&hkey, signing_input.as_bytes());
        format!("{signing_input}.{}", B64URL.encode(tag.as_ref()))
    }

    /// An unsigned token (`alg: none`).
    pub fn forge_none(claims: &Value) -> String {
        format!(
            "{}.{}.",
            B64URL.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
            B64URL.encode(claims.to_string())
        )
    }

    /// Claims shaped like a GitHub Actions ID token for `repository` (id `repo_id`).
    pub fn github_claims(&self, audience: &str, repository: &str, repo_id: &str) -> Value {
        let now = now();
        let owner = repository.split('/').next().unwrap_or("");
        json!({
            "iss": self.url, "aud": audience,
            "sub": format!("repo:{repository}:ref:refs/heads/main"),
            "repository": repository, "repository_id": repo_id,
            "repository_owner": owner, "repository_owner_id": "1001",
            "ref": "refs/heads/main", "ref_type": "branch", "sha": "0123456789abcdef",
            "workflow": "deploy", "workflow_ref": format!("{repository}/.github/workflows/deploy.yml@refs/heads/main"),
            "job_workflow_ref": format!("{repository}/.github/workflows/deploy.yml@refs/heads/main"),
            "environment": "production", "event_name": "push", "run_id": "4242", "run_attempt": "1",
            "actor": "octocat", "runner_environment": "github-hosted",
            "jti": unique_jti(), "iat": now, "nbf": now, "exp": now + 300,
        })
    }

    /// Claims shaped like a GitLab CI ID token for `project_path` (id `project_id`).
    pub fn gitlab_claims(&self, audience: &str, project_path: &str, project_id: &str) -> Value {
        let now = now();
        let namespace = project_path.rsplit_once('/').map(|(n, _)| n).unwrap_or("");
        json!({
            "iss": self.url, "aud": audience,
            "sub": format!("project_path:{project_path}:ref_type:branch:ref:main"),
            "project_id": project_id, "project_path": project_path,
            "namespace_id": "77", "namespace_path": namespace,
            "ref": "main", "ref_type": "branch", "ref_protected": "true",
            "environment": "production", "environment_protected": "true",
            "pipeline_source": "push", "pipeline_id": "9001", "job_id": "31337",
            "user_login": "gitlab-user", "user_id": "5",
            "jti": unique_jti(), "iat": now, "nbf": now, "exp": now + 300,
        })
    }
}

pub fn unique_jti() -> String {
    let mut b = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    B64URL.encode(b)
}

fn jwk(key: &FixtureKey) -> Value {
    match &key.kind {
        KeyKind::Rsa(pair) => {
            let components = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(pair.public());
            let (n, e) = (components.n, components.e);
            json!({"kty": "RSA", "kid": key.kid, "use": "sig", "alg": "RS256",
                   "n": B64URL.encode(n), "e": B64URL.encode(e)})
        }
        KeyKind::Ec(pair) => {
            let point = pair.public_key().as_ref();
            json!({"kty": "EC", "kid": key.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                   "x": B64URL.encode(&point[1..33]), "y": B64URL.encode(&point[33..65])})
        }
    }
}

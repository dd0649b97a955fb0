//! The OIDC issuer that `vaultd dev` runs beside the API, so the whole login flow can be tried
//! without a CI system: discovery at `/dev-oidc/.well-known/openid-configuration`, keys at
//! `/dev-oidc/jwks`, and a root-only `POST /v1/sys/dev/oidc/token` that mints ES256 tokens with
//! chosen claims. It exists only in dev mode: `vaultd server` never constructs one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{self as sig, KeyPair};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

pub const PATH_PREFIX: &str = "/dev-oidc";
pub const DEFAULT_AUDIENCE: &str = "vaultctl-dev";
const KID: &str = "dev-es256";

pub struct DevIssuer {
    pub issuer_url: String,
    pkcs8: Zeroizing<Vec<u8>>,
    public_point: Vec<u8>,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer_url", &self.issuer_url)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// A new issuer with a fresh P-256 key, at `<base_url>/dev-oidc`.
    pub fn new(base_url: &str) -> Result<Self, String> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "generating the dev issuer key failed")?;
        let pair = sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .map_err(|_| "loading the dev issuer key failed")?;
        Ok(Self {
            issuer_url: format!("{}{PATH_PREFIX}", base_url.trim_end_matches('/')),
            public_point: pair.public_key().as_ref().to_vec(),
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
        })
    }

    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer_url,
            "jwks_uri": format!("{}/jwks", self.issuer_url),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    pub fn jwks(&self) -> Value {
        let (x, y) = self
            .public_point
            .get(1..)
            .unwrap_or_default()
            .split_at(32.min(self.public_point.len().saturating_sub(1)));
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": KID, "use": "sig", "alg": "ES256",
            "x": B64URL.encode(x), "y": B64URL.encode(y),
        }]})
    }

    /// Claims of a token from the pretend repository `example/app` on `main`; `overrides`
    /// replace or add claims.
    pub fn claims(&self, audience: &str, ttl_secs: u64, overrides: Map<String, Value>) -> Value {
        let now = crate::clock::unix_now();
        let jti: String = crate::crypto::random_bytes::<12>()
            .map(|b| B64URL.encode(b))
            .unwrap_or_default();
        let mut claims = json!({
            "iss": self.issuer_url, "aud": audience,
            "sub": "repo:example/app:ref:refs/heads/main",
            "repository": "example/app", "repository_id": "100",
            "repository_owner": "example", "repository_owner_id": "10",
            "ref": "refs/heads/main", "ref_type": "branch", "event_name": "push",
            "workflow": "dev", "actor": "developer", "run_id": now.to_string(), "run_attempt": "1",
            "runner_environment": "self-hosted",
            "jti": jti, "iat": now, "nbf": now, "exp": now + ttl_secs,
        });
        if let Some(map) = claims.as_object_mut() {
            map.extend(overrides);
        }
        claims
    }

    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KID.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .map_err(|e| format!("signing failed: {e}"))
    }
}

//! JWT verification for pipeline logins. Two phases, named by trust: the unverified header is
//! read only to pick the algorithm (which must be on the issuer's allow-list) and the key (by
//! `kid`, from the issuer's own key set); then the signature and the registered claims are
//! verified with the algorithm pinned. `jku`, `x5u`, an embedded `jwk` and `x5c` are ignored;
//! any `crit` header is refused, since we implement no extensions.

use super::jwks::{JwksCache, JwksError, JwksSource};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

/// Largest JWT accepted, checked before any decoding.
pub const MAX_JWT_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 60;

/// What verification needs to know about an issuer.
#[derive(Debug, Clone)]
pub struct IssuerParams {
    /// Exact expected `iss`.
    pub issuer: String,
    pub algorithms: Vec<Algorithm>,
    /// Cap on `exp - iat`.
    pub max_lifetime_secs: u64,
    pub source: JwksSource,
}

/// Why a JWT was refused. `Display` is what the pipeline sees (which check failed, never the
/// expected value); [`LoginError::detail`] adds specifics for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("missing token")]
    MissingToken,
    #[error("token is larger than {MAX_JWT_BYTES} bytes")]
    TooLarge,
    #[error("token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("invalid algorithm (alg) header parameter: token signed with unexpected algorithm")]
    Algorithm(String),
    #[error("token has a crit header; no JWS extensions are supported")]
    Critical,
    #[error("error verifying token signature: {0}")]
    Keys(JwksError),
    #[error("error verifying token signature: signature does not verify")]
    Signature,
    #[error("invalid issuer (iss) claim")]
    Issuer,
    #[error("invalid audience (aud) claim: audience claim does not match any expected audience")]
    Audience,
    #[error("invalid expiration time (exp) claim: token is expired")]
    Expired,
    #[error("invalid not before (nbf) claim: token is not valid yet")]
    NotYetValid,
    #[error("invalid issued at (iat) claim: token issued in the future")]
    IssuedInFuture,
    #[error("token lifetime (exp - iat) exceeds the issuer's max_token_lifetime")]
    LifetimeTooLong,
    #[error("claim \"{0}\" is missing")]
    MissingClaim(String),
    #[error("claim \"{0}\" has the wrong JSON type")]
    ClaimType(String),
    #[error("token has already been used (jti replay)")]
    Replayed,
}

impl LoginError {
    /// A stable, bounded label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::MissingToken => "missing_token",
            LoginError::TooLarge => "too_large",
            LoginError::Malformed(_) => "malformed",
            LoginError::Algorithm(_) => "algorithm",
            LoginError::Critical => "crit_header",
            LoginError::Keys(_) => "keys",
            LoginError::Signature => "signature",
            LoginError::Issuer => "issuer",
            LoginError::Audience => "audience",
            LoginError::Expired => "expired",
            LoginError::NotYetValid => "not_yet_valid",
            LoginError::IssuedInFuture => "issued_in_future",
            LoginError::LifetimeTooLong => "lifetime",
            LoginError::MissingClaim(_) => "missing_claim",
            LoginError::ClaimType(_) => "claim_type",
            LoginError::Replayed => "replay",
        }
    }

    /// The full reason, for the audit log only.
    pub fn detail(&self) -> String {
        match self {
            LoginError::Algorithm(alg) => format!("alg {alg:?} is not allowed for this issuer"),
            LoginError::Keys(e) => format!("keys: {e}"),
            other => other.to_string(),
        }
    }
}

fn header_of(unverified_jwt: &str) -> Result<serde_json::Map<String, Value>, LoginError> {
    let mut parts = unverified_jwt.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LoginError::Malformed("expected three dot-separated parts"));
    };
    let bytes = B64URL
        .decode(header.trim_end_matches('='))
        .map_err(|_| LoginError::Malformed("header is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(LoginError::Malformed("header is not a JSON object")),
    }
}

fn algorithm_named(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Parses an allow-list entry; HMAC and `none` never parse.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    algorithm_named(name)
}

fn now() -> u64 {
    crate::clock::unix_now()
}

/// Verifies `jwt` against `issuer` and `audiences`; returns the verified claims.
pub async fn verify(
    jwt: &str,
    issuer: &IssuerParams,
    audiences: &[String],
    jwks: &JwksCache,
) -> Result<Value, LoginError> {
    if jwt.is_empty() {
        return Err(LoginError::MissingToken);
    }
    if jwt.len() > MAX_JWT_BYTES {
        return Err(LoginError::TooLarge);
    }
    let unverified_header = header_of(jwt)?;
    if unverified_header.contains_key("crit") {
        return Err(LoginError::Critical);
    }
    let alg_name = unverified_header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(LoginError::Malformed("header has no alg"))?;
    let algorithm = algorithm_named(alg_name)
        .filter(|a| issuer.algorithms.contains(a))
        .ok_or_else(|| LoginError::Algorithm(alg_name.chars().take(16).collect()))?;
    let kid = match unverified_header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(LoginError::Malformed("kid is not a string")),
    };
    let key = jwks
        .key(&issuer.source, kid)
        .await
        .map_err(LoginError::Keys)?;
    // A key that names its algorithm verifies only that algorithm.
    if key
        .alg
        .as_deref()
        .is_some_and(|declared| declared != alg_name)
    {
        return Err(LoginError::Signature);
    }

    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&issuer.issuer]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.validate_exp = true;
    let signed_claims = jsonwebtoken::decode::<Value>(jwt, &key.key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => LoginError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => LoginError::Signature,
            ErrorKind::ExpiredSignature => LoginError::Expired,
            ErrorKind::ImmatureSignature => LoginError::NotYetValid,
            ErrorKind::InvalidIssuer => LoginError::Issuer,
            ErrorKind::InvalidAudience => LoginError::Audience,
            ErrorKind::MissingRequiredClaim(c) => LoginError::MissingClaim(c.clone()),
            ErrorKind::InvalidClaimFormat(c) => LoginError::ClaimType(c.clone()),
            _ => LoginError::Malformed("payload could not be decoded"),
        })?
        .claims;

    // Registered claims the library leaves to us: types and lifetime.
    let time_claim = |name: &str| -> Result<u64, LoginError> {
        signed_claims
            .get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| LoginError::ClaimType(name.to_owned()))
    };
    let iat = time_claim("iat")?;
    let exp = time_claim("exp")?;
    if signed_claims.get("nbf").is_some() {
        time_claim("nbf")?;
    }
    if signed_claims.get("iss").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
        return Err(LoginError::Issuer);
    }
    if iat > now() + LEEWAY_SECS {
        return Err(LoginError::IssuedInFuture);
    }
    if exp.saturating_sub(iat) > issuer.max_lifetime_secs {
        return Err(LoginError::LifetimeTooLong);
    }
    match signed_claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= 256 => {}
        Some(_) => return Err(LoginError::ClaimType("jti".into())),
        None => return Err(LoginError::MissingClaim("jti".into())),
    }
    Ok(signed_claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_is_strict() {
        assert!(header_of("a.b").is_err());
        assert!(header_of("a.b.c.d").is_err());
        assert!(header_of("!!!.b.c").is_err());
        let h = B64URL.encode(br#"{"alg":"RS256","kid":"k"}"#);
        assert_eq!(header_of(&format!("{h}.x.y")).expect("header")["kid"], "k");
        let arr = B64URL.encode(b"[1]");
        assert!(header_of(&format!("{arr}.x.y")).is_err());
    }

    #[test]
    fn hmac_and_none_never_parse() {
        for bad in ["HS256", "HS384", "HS512", "none", "None", "rs256", ""] {
            assert!(parse_algorithm(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_algorithm("RS256"), Some(Algorithm::RS256));
    }
}

#[cfg(test)]
mod hostile_input {
    use super::*;
    use proptest::prelude::*;

    fn issuer() -> IssuerParams {
        IssuerParams {
            issuer: "https://issuer.example".into(),
            algorithms: vec![Algorithm::RS256],
            max_lifetime_secs: 3600,
            // Never fetched: every input below fails before the key lookup, or finds no keys.
            source: JwksSource::File("/nonexistent/jwks.json".into()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary strings at the JWT front door: an error, never a panic or a hang.
        #[test]
        fn arbitrary_tokens_are_refused(token in ".{0,300}", parts in prop::collection::vec("[A-Za-z0-9_=-]{0,80}", 0..5)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let jwks = JwksCache::new(false, std::time::Duration::from_secs(30), Default::default());
            for candidate in [token, parts.join(".")] {
                let result = runtime.block_on(verify(&candidate, &issuer(), &["aud".to_owned()], &jwks));
                prop_assert!(result.is_err());
            }
        }

        /// Headers that are valid base64url JSON but hostile.
        #[test]
        fn hostile_headers_are_refused(alg in "[A-Za-z0-9]{0,8}", kid in prop::option::of(".{0,40}"), crit in any::<bool>()) {
            let mut header = serde_json::json!({"alg": alg});
            if let Some(k) = kid { header["kid"] = Value::String(k); }
            if crit { header["crit"] = serde_json::json!(["exp"]); }
            let token = format!("{}.{}.{}", B64URL.encode(header.to_string()), B64URL.encode("{}"), B64URL.encode("sig"));
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let jwks = JwksCache::new(false, std::time::Duration::from_secs(30), Default::default());
            prop_assert!(runtime.block_on(verify(&token, &issuer(), &["aud".to_owned()], &jwks)).is_err());
        }
    }
}

//! JWT verification for pipeline logins. Two phases, named by trust: the `UnverifiedHeader`
//! is read only to pick the algorithm (which must be on the issuer's allow-list) and the key (by
//! `kid`, from the issuer's own key set); then the signature and the registered claims are
//! verified with the algorithm pinned, and the result is a [`VerifiedClaims`], which nothing
//! but [`verify`] can construct. `jku`, `x5u`, an embedded `jwk` and `x5c` are ignored; any
//! `crit` header is refused, since we implement no extensions; duplicate member names in the
//! header or payload are refused (see `strict_json`).

use super::jwks::{JwksCache, JwksError, JwksSource, VerifyingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

/// Largest JWT accepted, checked before any decoding.
pub const MAX_JWT_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
///
/// Invariant: a JWT is accepted until `exp + LEEWAY_SECS`, so a spent `jti` must be kept at
/// least that long; the jti sweep (`login::sweep_jti`) removes a record only after it.
/// Raising this without the sweep would reopen replay.
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
/// expected value); [`VerifyError::detail`] adds specifics for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
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

impl VerifyError {
    /// A stable, bounded label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingToken => "missing_token",
            VerifyError::TooLarge => "too_large",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Algorithm(_) => "algorithm",
            VerifyError::Critical => "crit_header",
            VerifyError::Keys(_) => "keys",
            VerifyError::Signature => "signature",
            VerifyError::Issuer => "issuer",
            VerifyError::Audience => "audience",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::IssuedInFuture => "issued_in_future",
            VerifyError::LifetimeTooLong => "lifetime",
            VerifyError::MissingClaim(_) => "missing_claim",
            VerifyError::ClaimType(_) => "claim_type",
            VerifyError::Replayed => "replay",
        }
    }

    /// The full reason, for the audit log only.
    pub fn detail(&self) -> String {
        match self {
            VerifyError::Algorithm(alg) => format!("alg {alg:?} is not allowed for this issuer"),
            VerifyError::Keys(e) => format!("keys: {e}"),
            other => other.to_string(),
        }
    }
}

/// The JOSE header as sent: read only to choose an algorithm and a key, never trusted.
#[derive(Debug)]
struct UnverifiedHeader {
    alg: String,
    kid: Option<String>,
    crit: bool,
}

/// Splits the compact JWS and reads its header. Refuses anything that is not three parts, a
/// header that is not a JSON object with unique member names, or a non-string `alg`/`kid`.
fn unverified_header(unverified_jwt: &str) -> Result<UnverifiedHeader, VerifyError> {
    let mut parts = unverified_jwt.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed("expected three dot-separated parts"));
    };
    let bytes = B64URL
        .decode(header.trim_end_matches('='))
        .map_err(|_| VerifyError::Malformed("header is not base64url"))?;
    super::strict_json::check_unique_members(&bytes)
        .map_err(|_| VerifyError::Malformed("header is not JSON with unique member names"))?;
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(VerifyError::Malformed("header is not a JSON object"));
    };
    // The payload is checked here too, before any key lookup: the library's own parser would
    // keep the last of two equal names.
    let payload = B64URL
        .decode(payload.trim_end_matches('='))
        .map_err(|_| VerifyError::Malformed("payload is not base64url"))?;
    super::strict_json::check_unique_members(&payload)
        .map_err(|_| VerifyError::Malformed("payload is not JSON with unique member names"))?;
    let alg = match map.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(VerifyError::Malformed("header has no alg")),
    };
    let kid = match map.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(VerifyError::Malformed("kid is not a string")),
    };
    Ok(UnverifiedHeader {
        alg,
        kid,
        crit: map.contains_key("crit"),
    })
}

/// Claims of a JWT whose signature, issuer, audience, times and `jti` were verified. Only
/// [`verify`] constructs one, so a function that takes it cannot be handed unverified input.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    iss: String,
    jti: String,
    exp: u64,
    iat: u64,
    nbf: Option<u64>,
    /// Every claim, registered ones included, as signed.
    all: Value,
}

impl VerifiedClaims {
    pub fn iss(&self) -> &str {
        &self.iss
    }
    pub fn jti(&self) -> &str {
        &self.jti
    }
    pub fn exp(&self) -> u64 {
        self.exp
    }
    pub fn iat(&self) -> u64 {
        self.iat
    }
    pub fn nbf(&self) -> Option<u64> {
        self.nbf
    }
    /// One claim by its top-level name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.all.get(name)
    }
    /// All claims as a JSON object, for the pure policy engine's matcher.
    pub fn as_json(&self) -> &Value {
        &self.all
    }
}

/// The asymmetric algorithms vaultd verifies, by their JOSE names.
const ALGORITHMS: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

fn algorithm_named(name: &str) -> Option<Algorithm> {
    ALGORITHMS
        .iter()
        .find(|(label, _)| *label == name)
        .map(|(_, algorithm)| *algorithm)
}

/// Parses an allow-list entry; HMAC and `none` never parse.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    algorithm_named(name)
}

fn now() -> u64 {
    crate::clock::unix_now()
}

/// The first phase, shared by [`verify`] and [`inspect`]: size, header, `crit`, the
/// algorithm (on the issuer's allow-list) and the issuer's key for the token's `kid`.
async fn signing_key(
    jwt: &str,
    issuer: &IssuerParams,
    jwks: &JwksCache,
) -> Result<(Algorithm, VerifyingKey), VerifyError> {
    if jwt.is_empty() {
        return Err(VerifyError::MissingToken);
    }
    if jwt.len() > MAX_JWT_BYTES {
        return Err(VerifyError::TooLarge);
    }
    let header = unverified_header(jwt)?;
    if header.crit {
        return Err(VerifyError::Critical);
    }
    let alg_name = header.alg.as_str();
    let algorithm = algorithm_named(alg_name)
        .filter(|a| issuer.algorithms.contains(a))
        .ok_or_else(|| VerifyError::Algorithm(alg_name.chars().take(16).collect()))?;
    let kid = header.kid.as_deref();
    let key = jwks
        .key(&issuer.source, kid)
        .await
        .map_err(VerifyError::Keys)?;
    // A key that names its algorithm verifies only that algorithm.
    if key
        .alg
        .as_deref()
        .is_some_and(|declared| declared != alg_name)
    {
        return Err(VerifyError::Signature);
    }
    Ok((algorithm, key))
}

fn decode_error(e: &jsonwebtoken::errors::Error) -> VerifyError {
    match e.kind() {
        ErrorKind::InvalidSignature => VerifyError::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => VerifyError::Signature,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer => VerifyError::Issuer,
        ErrorKind::InvalidAudience => VerifyError::Audience,
        ErrorKind::MissingRequiredClaim(c) => VerifyError::MissingClaim(c.clone()),
        ErrorKind::InvalidClaimFormat(c) => VerifyError::ClaimType(c.clone()),
        _ => VerifyError::Malformed("payload could not be decoded"),
    }
}

/// Verifies `jwt` against `issuer` and `audiences`; returns the verified claims.
pub async fn verify(
    jwt: &str,
    issuer: &IssuerParams,
    audiences: &[String],
    jwks: &JwksCache,
) -> Result<VerifiedClaims, VerifyError> {
    let (algorithm, key) = signing_key(jwt, issuer, jwks).await?;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&issuer.issuer]);
    validation.set_audience(audiences);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.validate_exp = true;
    let signed_claims = jsonwebtoken::decode::<Value>(jwt, &key.key, &validation)
        .map_err(|e| decode_error(&e))?
        .claims;

    // Registered claims the library leaves to us: types and lifetime.
    let time_claim = |name: &str| -> Result<u64, VerifyError> {
        signed_claims
            .get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| VerifyError::ClaimType(name.to_owned()))
    };
    let iat = time_claim("iat")?;
    let exp = time_claim("exp")?;
    let nbf = match signed_claims.get("nbf") {
        Some(_) => Some(time_claim("nbf")?),
        None => None,
    };
    let Some(iss) = signed_claims
        .get("iss")
        .and_then(Value::as_str)
        .filter(|iss| *iss == issuer.issuer)
        .map(str::to_owned)
    else {
        return Err(VerifyError::Issuer);
    };
    if iat > now() + LEEWAY_SECS {
        return Err(VerifyError::IssuedInFuture);
    }
    if exp.saturating_sub(iat) > issuer.max_lifetime_secs {
        return Err(VerifyError::LifetimeTooLong);
    }
    let jti = match signed_claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= 256 => j.clone(),
        Some(_) => return Err(VerifyError::ClaimType("jti".into())),
        None => return Err(VerifyError::MissingClaim("jti".into())),
    };
    Ok(VerifiedClaims {
        iss,
        jti,
        exp,
        iat,
        nbf,
        all: signed_claims,
    })
}

/// What `vaultctl policy test --jwt` learns of a token without logging in: the checks of
/// [`verify`] one by one, and the payload. Nothing is spent or stored.
#[derive(Debug)]
pub struct Inspection {
    /// The token's own checks, in order: format, algorithm and signature, then the times and
    /// `jti` (see [`policies::time_checks`]).
    pub checks: Vec<policies::Check>,
    /// The payload, whether or not the signature verified (`None` if it does not decode).
    pub claims: Option<Value>,
    /// Whether the issuer's key verified the signature.
    pub signature_verified: bool,
}

/// Inspects `jwt` as if for a login to a role of `issuer` (named `issuer_name` in the
/// document). The payload is decoded even when the signature fails, so that its claims can
/// still be explained, marked unverified.
pub async fn inspect(
    jwt: &str,
    issuer_name: &str,
    issuer: &IssuerParams,
    jwks: &JwksCache,
) -> Inspection {
    use policies::Check;
    let wanted_format = "a compact JWS (three base64url parts, JSON objects, unique names)";
    let claims = unverified_header(jwt).ok().and_then(|_| payload(jwt));
    let mut checks = Vec::new();
    let allowed: Vec<&str> = issuer.algorithms.iter().map(algorithm_label).collect();
    let wanted_signature = format!(
        "signed by a key of issuer `{issuer_name}` with {}",
        allowed.join(" or ")
    );
    let signature_verified = match signing_key(jwt, issuer, jwks).await {
        Ok((algorithm, key)) => {
            let mut validation = Validation::new(algorithm);
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.validate_aud = false;
            validation.set_required_spec_claims::<&str>(&[]);
            match jsonwebtoken::decode::<Value>(jwt, &key.key, &validation) {
                Ok(_) => {
                    checks.push(Check::pass(
                        "signature",
                        wanted_signature,
                        "a valid signature",
                    ));
                    true
                }
                Err(e) => {
                    checks.push(Check::fail(
                        "signature",
                        wanted_signature,
                        decode_error(&e).to_string(),
                    ));
                    false
                }
            }
        }
        Err(
            e @ (VerifyError::MissingToken | VerifyError::TooLarge | VerifyError::Malformed(_)),
        ) => {
            checks.push(Check::fail("format", wanted_format, e.to_string()));
            false
        }
        Err(e) => {
            checks.push(Check::fail("signature", wanted_signature, e.detail()));
            false
        }
    };
    if let Some(claims) = &claims {
        checks.extend(policies::time_checks(
            claims,
            now(),
            LEEWAY_SECS,
            issuer.max_lifetime_secs,
        ));
    }
    Inspection {
        checks,
        claims,
        signature_verified,
    }
}

fn algorithm_label(algorithm: &Algorithm) -> &'static str {
    ALGORITHMS
        .iter()
        .find(|(_, known)| known == algorithm)
        .map_or("another algorithm", |(label, _)| label)
}

/// The payload of a JWT whose header already parsed, unverified.
fn payload(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = B64URL.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_is_strict() {
        let payload = B64URL.encode(br#"{"sub":"x"}"#);
        assert!(unverified_header("a.b").is_err());
        assert!(unverified_header("a.b.c.d").is_err());
        assert!(unverified_header(&format!("!!!.{payload}.c")).is_err());
        let h = B64URL.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let header = unverified_header(&format!("{h}.{payload}.y")).expect("header");
        assert_eq!(header.kid.as_deref(), Some("k"));
        assert_eq!(header.alg, "RS256");
        let arr = B64URL.encode(b"[1]");
        assert!(unverified_header(&format!("{arr}.{payload}.y")).is_err());
    }

    #[test]
    fn duplicate_member_names_in_header_or_payload_are_refused() {
        let good_header = B64URL.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let good_payload = B64URL.encode(br#"{"sub":"a","aud":"x"}"#);
        assert!(unverified_header(&format!("{good_header}.{good_payload}.s")).is_ok());
        let dup_header = B64URL.encode(br#"{"alg":"RS256","kid":"k","kid":"other"}"#);
        let err = unverified_header(&format!("{dup_header}.{good_payload}.s")).expect_err("dup");
        assert!(err.to_string().contains("unique member names"), "{err}");
        for payload in [
            br#"{"sub":"a","sub":"b"}"#.as_slice(),
            br#"{"repository_id":"1","x":{"y":1,"y":2}}"#,
            br#"{"aud":"x","aud":"y"}"#,
        ] {
            let token = format!("{good_header}.{}.s", B64URL.encode(payload));
            let err = unverified_header(&token).expect_err("duplicate claim");
            assert!(err.to_string().contains("unique member names"), "{err}");
        }
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

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
use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind;
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

/// A compact JWS as sent, split and parsed but not trusted: the header is read only to choose
/// an algorithm and a key; the payload is parsed once, here, so that its member names are
/// checked before any key lookup (the same parse is what [`verify`] goes on to validate).
/// Its parts together are the bearer token itself, so its `Debug` shows the header's choices
/// only.
struct UnverifiedJwt<'a> {
    alg: String,
    kid: Option<String>,
    crit: bool,
    /// `header.payload` as sent: what the signature covers.
    signed: &'a str,
    /// The signature part, base64url.
    signature: &'a str,
    header: Value,
    claims: serde_json::Map<String, Value>,
}

impl std::fmt::Debug for UnverifiedJwt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnverifiedJwt")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("crit", &self.crit)
            .finish_non_exhaustive()
    }
}

/// Splits the compact JWS and parses its header and payload. Refuses anything that is not three
/// parts of unpadded base64url, a header or payload that is not a JSON object with unique
/// member names, or a non-string `alg`/`kid`.
fn unverified(jwt: &str) -> Result<UnverifiedJwt<'_>, VerifyError> {
    let mut parts = jwt.split('.');
    let (Some(header_part), Some(payload_part), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed("expected three dot-separated parts"));
    };
    let signed = &jwt[..header_part.len() + 1 + payload_part.len()];
    let object = |part: &str, not_base64, not_unique, not_object| {
        let bytes = B64URL
            .decode(part)
            .map_err(|_| VerifyError::Malformed(not_base64))?;
        match super::strict_json::parse(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(VerifyError::Malformed(not_object)),
            Err(_) => Err(VerifyError::Malformed(not_unique)),
        }
    };
    let header = object(
        header_part,
        "header is not base64url",
        "header is not JSON with unique member names",
        "header is not a JSON object",
    )?;
    let claims = object(
        payload_part,
        "payload is not base64url",
        "payload is not JSON with unique member names",
        "payload is not a JSON object",
    )?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(VerifyError::Malformed("header has no alg")),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(VerifyError::Malformed("kid is not a string")),
    };
    Ok(UnverifiedJwt {
        alg,
        kid,
        crit: header.contains_key("crit"),
        signed,
        signature,
        header: Value::Object(header),
        claims,
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
async fn signing_key<'a>(
    jwt: &'a str,
    issuer: &IssuerParams,
    jwks: &JwksCache,
) -> Result<(Algorithm, VerifyingKey, UnverifiedJwt<'a>), VerifyError> {
    if jwt.is_empty() {
        return Err(VerifyError::MissingToken);
    }
    if jwt.len() > MAX_JWT_BYTES {
        return Err(VerifyError::TooLarge);
    }
    let token = unverified(jwt)?;
    if token.crit {
        return Err(VerifyError::Critical);
    }
    let alg_name = token.alg.as_str();
    let algorithm = algorithm_named(alg_name)
        .filter(|a| issuer.algorithms.contains(a))
        .ok_or_else(|| VerifyError::Algorithm(alg_name.chars().take(16).collect()))?;
    let kid = token.kid.as_deref();
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
    Ok((algorithm, key, token))
}

/// Checks the signature over `header.payload` with `key`, by `algorithm` (the header's own,
/// already on the issuer's allow-list); the crypto provider refuses a key of another family.
/// The header's registered members must have their JOSE types (RFC 7515 §4.1) too.
fn check_signature(
    token: &UnverifiedJwt<'_>,
    algorithm: Algorithm,
    key: &VerifyingKey,
) -> Result<(), VerifyError> {
    use serde::Deserialize;
    if jsonwebtoken::Header::deserialize(&token.header).is_err() {
        return Err(VerifyError::Malformed(
            "a header member has the wrong JSON type",
        ));
    }
    match jsonwebtoken::crypto::verify(
        token.signature,
        token.signed.as_bytes(),
        &key.key,
        algorithm,
    ) {
        Ok(true) => Ok(()),
        Ok(false) => Err(VerifyError::Signature),
        Err(e) => Err(decode_error(&e)),
    }
}

fn decode_error(e: &jsonwebtoken::errors::Error) -> VerifyError {
    match e.kind() {
        ErrorKind::InvalidSignature => VerifyError::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => VerifyError::Signature,
        ErrorKind::Base64(_) => VerifyError::Malformed("signature is not base64url"),
        _ => VerifyError::Malformed("signature could not be decoded"),
    }
}

/// A NumericDate claim (RFC 7519 §2) as a bound is read: an integer, or a finite non-negative
/// number, rounded; `null` is no date. Its exact type is checked afterwards (`time_claim` in
/// [`verify`]).
enum NumericDate {
    Absent,
    Invalid,
    At(u64),
}

fn numeric_date(claims: &serde_json::Map<String, Value>, name: &str) -> NumericDate {
    match claims.get(name) {
        None => NumericDate::Absent,
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(at), _) => NumericDate::At(at),
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                NumericDate::At(f.round() as u64)
            }
            _ => NumericDate::Invalid,
        },
        Some(_) => NumericDate::Invalid,
    }
}

/// A claim that is one string or an array of strings (`iss`, `aud`); `None` for anything else.
fn one_or_many(value: Option<&Value>) -> Option<Vec<&str>> {
    match value? {
        Value::String(one) => Some(vec![one.as_str()]),
        Value::Array(many) => many.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// Verifies `jwt` against `issuer` and `audiences`; returns the verified claims.
///
/// After the signature, the registered claims in this order: `exp`, `iss` and `aud` present
/// (as a time, and as a string or strings); `nbf` a time if present; not expired (`exp` +
/// leeway); not before `nbf` (− leeway); `iss` and `aud` the expected ones; then their exact
/// types, `iat` not in the future, the lifetime, and `jti`.
pub async fn verify(
    jwt: &str,
    issuer: &IssuerParams,
    audiences: &[String],
    jwks: &JwksCache,
) -> Result<VerifiedClaims, VerifyError> {
    let (algorithm, key, token) = signing_key(jwt, issuer, jwks).await?;
    check_signature(&token, algorithm, &key)?;
    let claims = token.claims;

    let exp_bound = match numeric_date(&claims, "exp") {
        NumericDate::At(exp) => exp,
        _ => return Err(VerifyError::MissingClaim("exp".into())),
    };
    let iss_claim =
        one_or_many(claims.get("iss")).ok_or_else(|| VerifyError::MissingClaim("iss".into()))?;
    let aud_claim =
        one_or_many(claims.get("aud")).ok_or_else(|| VerifyError::MissingClaim("aud".into()))?;
    let nbf_bound = match numeric_date(&claims, "nbf") {
        NumericDate::Invalid => return Err(VerifyError::ClaimType("nbf".into())),
        NumericDate::Absent => None,
        NumericDate::At(nbf) => Some(nbf),
    };
    let now = now();
    if exp_bound < now.saturating_sub(LEEWAY_SECS) {
        return Err(VerifyError::Expired);
    }
    if nbf_bound.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(VerifyError::NotYetValid);
    }
    if !iss_claim.contains(&issuer.issuer.as_str()) {
        return Err(VerifyError::Issuer);
    }
    if !aud_claim
        .iter()
        .any(|aud| audiences.iter().any(|wanted| wanted == aud))
    {
        return Err(VerifyError::Audience);
    }
    // `sub` is a StringOrURI (RFC 7519 §4.1.2): one value, never a list that a binding could
    // match by any one of its elements.
    if !matches!(
        claims.get("sub"),
        None | Some(Value::Null | Value::String(_))
    ) {
        return Err(VerifyError::ClaimType("sub".into()));
    }

    // The exact types and the lifetime.
    let time_claim = |name: &str| -> Result<u64, VerifyError> {
        claims
            .get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| VerifyError::ClaimType(name.to_owned()))
    };
    let iat = time_claim("iat")?;
    let exp = time_claim("exp")?;
    let nbf = match claims.get("nbf") {
        Some(_) => Some(time_claim("nbf")?),
        None => None,
    };
    let Some(iss) = claims
        .get("iss")
        .and_then(Value::as_str)
        .filter(|iss| *iss == issuer.issuer)
        .map(str::to_owned)
    else {
        return Err(VerifyError::Issuer);
    };
    if iat > now + LEEWAY_SECS {
        return Err(VerifyError::IssuedInFuture);
    }
    if exp.saturating_sub(iat) > issuer.max_lifetime_secs {
        return Err(VerifyError::LifetimeTooLong);
    }
    let jti = match claims.get("jti") {
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
        all: Value::Object(claims),
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
    let claims = unverified(jwt)
        .ok()
        .map(|token| Value::Object(token.claims));
    let mut checks = Vec::new();
    let allowed: Vec<&str> = issuer.algorithms.iter().map(algorithm_label).collect();
    let wanted_signature = format!(
        "signed by a key of issuer `{issuer_name}` with {}",
        allowed.join(" or ")
    );
    let signature_verified = match signing_key(jwt, issuer, jwks).await {
        Ok((algorithm, key, token)) => match check_signature(&token, algorithm, &key) {
            Ok(()) => {
                checks.push(Check::pass(
                    "signature",
                    wanted_signature,
                    "a valid signature",
                ));
                true
            }
            Err(e) => {
                checks.push(Check::fail("signature", wanted_signature, e.to_string()));
                false
            }
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_is_strict() {
        let payload = B64URL.encode(br#"{"sub":"x"}"#);
        assert!(unverified("a.b").is_err());
        assert!(unverified("a.b.c.d").is_err());
        assert!(unverified(&format!("!!!.{payload}.c")).is_err());
        let h = B64URL.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let jwt = format!("{h}.{payload}.y");
        let header = unverified(&jwt).expect("header");
        assert_eq!(header.signed, format!("{h}.{payload}"));
        assert_eq!(header.signature, "y");
        assert_eq!(header.claims.get("sub"), Some(&Value::String("x".into())));
        assert_eq!(header.kid.as_deref(), Some("k"));
        assert_eq!(header.alg, "RS256");
        let arr = B64URL.encode(b"[1]");
        assert!(unverified(&format!("{arr}.{payload}.y")).is_err());
        assert!(
            unverified(&format!("{h}.{arr}.y")).is_err(),
            "claims are an object"
        );
        // Unpadded base64url only (RFC 7515 §2): a padded part is refused.
        let padded = base64::engine::general_purpose::URL_SAFE.encode(br#"{"alg": "RS256"}"#);
        assert!(padded.ends_with('='));
        assert!(unverified(&format!("{padded}.{payload}.y")).is_err());
    }

    #[test]
    fn duplicate_member_names_in_header_or_payload_are_refused() {
        let good_header = B64URL.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let good_payload = B64URL.encode(br#"{"sub":"a","aud":"x"}"#);
        assert!(unverified(&format!("{good_header}.{good_payload}.s")).is_ok());
        let dup_header = B64URL.encode(br#"{"alg":"RS256","kid":"k","kid":"other"}"#);
        let err = unverified(&format!("{dup_header}.{good_payload}.s")).expect_err("dup");
        assert!(err.to_string().contains("unique member names"), "{err}");
        for payload in [
            br#"{"sub":"a","sub":"b"}"#.as_slice(),
            br#"{"repository_id":"1","x":{"y":1,"y":2}}"#,
            br#"{"aud":"x","aud":"y"}"#,
        ] {
            let token = format!("{good_header}.{}.s", B64URL.encode(payload));
            let err = unverified(&token).expect_err("duplicate claim");
            assert!(err.to_string().contains("unique member names"), "{err}");
        }
    }

    #[test]
    fn registered_claims_are_read_in_the_shapes_the_checks_need() {
        let claims = serde_json::json!({
            "int": 5, "float": 5.6, "negative": -1, "text": "5", "null": null, "huge": 1e300
        });
        let claims = claims.as_object().expect("object");
        assert!(matches!(numeric_date(claims, "int"), NumericDate::At(5)));
        assert!(matches!(numeric_date(claims, "float"), NumericDate::At(6)));
        for invalid in ["negative", "text", "huge", "null"] {
            assert!(
                matches!(numeric_date(claims, invalid), NumericDate::Invalid),
                "{invalid}"
            );
        }
        assert!(matches!(
            numeric_date(claims, "missing"),
            NumericDate::Absent
        ));
        let value = |v: Value| one_or_many(Some(&v)).map(|all| all.join(","));
        assert_eq!(value(serde_json::json!("a")).as_deref(), Some("a"));
        assert_eq!(value(serde_json::json!(["a", "b"])).as_deref(), Some("a,b"));
        assert_eq!(value(serde_json::json!([])).as_deref(), Some(""));
        assert_eq!(value(serde_json::json!(["a", 1])), None);
        assert_eq!(value(serde_json::json!(1)), None);
        assert_eq!(one_or_many(None), None);
    }

    #[test]
    fn an_unverified_token_does_not_print_its_parts() {
        let jwt = format!(
            "{}.{}.c2lnbmF0dXJl",
            B64URL.encode(br#"{"alg":"RS256","kid":"k"}"#),
            B64URL.encode(br#"{"sub":"repo:acme/api","jti":"j-1"}"#)
        );
        let shown = format!("{:?}", unverified(&jwt).expect("parses"));
        assert!(shown.contains("RS256"), "{shown}");
        for part in jwt.split('.').chain(["repo:acme/api", "j-1"]) {
            assert!(!shown.contains(part), "{part} in {shown}");
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

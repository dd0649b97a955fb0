//! A ring-backed `jsonwebtoken` crypto provider, so JWT verification uses the same crypto
//! library as everything else (no `rsa` crate, no aws-lc). Verifies the RS*, PS*, ES256/ES384
//! and EdDSA families; signs ES256 and EdDSA (the dev issuer and identity tokens) and RS256 from an operator's
//! PKCS#8 key (identity tokens). HMAC algorithms are
//! refused outright: no issuer key may ever be used as an HMAC secret.
//!
//! [`install`] must run before any JWT is touched; `main` and the test harness call it.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self as sig, KeyPair};

fn unsupported() -> Error {
    ErrorKind::InvalidAlgorithm.into()
}

struct RingVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

fn rsa_params(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let bad = |_| signature::Error::new();
        if let Some(params) = rsa_params(self.algorithm) {
            return match self.key.kind() {
                DecodingKeyKind::RsaModulusExponent { n, e } => {
                    sig::RsaPublicKeyComponents { n, e }
                        .verify(params, msg, signature)
                        .map_err(bad)
                }
                DecodingKeyKind::SecretOrDer(der) => sig::UnparsedPublicKey::new(params, der)
                    .verify(msg, signature)
                    .map_err(bad),
            };
        }
        let algorithm: &'static dyn sig::VerificationAlgorithm = match self.algorithm {
            Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA => &sig::ED25519,
            _ => return Err(signature::Error::new()),
        };
        match self.key.kind() {
            DecodingKeyKind::SecretOrDer(bytes) => sig::UnparsedPublicKey::new(algorithm, bytes)
                .verify(msg, signature)
                .map_err(bad),
            DecodingKeyKind::RsaModulusExponent { .. } => Err(signature::Error::new()),
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let family_ok = match algorithm {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => key.family() == AlgorithmFamily::Rsa,
        Algorithm::ES256 | Algorithm::ES384 => key.family() == AlgorithmFamily::Ec,
        Algorithm::EdDSA => key.family() == AlgorithmFamily::Ed,
        // HS* and anything added later: never.
        _ => false,
    };
    if !family_ok {
        return Err(unsupported());
    }
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key: key.clone(),
    }))
}

enum RingKeyPair {
    Ecdsa(sig::EcdsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
    Rsa(sig::RsaKeyPair),
}

struct RingSigner {
    algorithm: Algorithm,
    pair: RingKeyPair,
}

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        match &self.pair {
            RingKeyPair::Ecdsa(pair) => pair
                .sign(&ring::rand::SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            RingKeyPair::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            RingKeyPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &ring::rand::SystemRandom::new(),
                    msg,
                    &mut signature,
                )
                .map_err(|_| signature::Error::new())?;
                Ok(signature)
            }
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    let pair = match algorithm {
        Algorithm::ES256 => RingKeyPair::Ecdsa(
            sig::EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
                &ring::rand::SystemRandom::new(),
            )
            .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?,
        ),
        Algorithm::EdDSA => RingKeyPair::Ed25519(
            sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes())
                .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?,
        ),
        // Operator-supplied PKCS#8 keys of identity tokens (ring cannot generate RSA keys).
        Algorithm::RS256 => RingKeyPair::Rsa(
            sig::RsaKeyPair::from_pkcs8(key.as_bytes())
                .map_err(|_| Error::from(ErrorKind::InvalidRsaKey(String::new())))?,
        ),
        _ => return Err(unsupported()),
    };
    Ok(Box::new(RingSigner {
        algorithm: *algorithm,
        pair,
    }))
}

fn not_needed_rsa(_: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    Err(unsupported())
}

fn ec_from_private(
    der: &[u8],
    alg: Algorithm,
) -> Result<(jsonwebtoken::jwk::EllipticCurve, Vec<u8>, Vec<u8>), Error> {
    if alg != Algorithm::ES256 {
        return Err(unsupported());
    }
    let pair = sig::EcdsaKeyPair::from_pkcs8(
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        der,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    let public = pair.public_key().as_ref();
    let (x, y) = public
        .get(1..)
        .ok_or_else(|| Error::from(ErrorKind::InvalidEcdsaKey))?
        .split_at(32);
    Ok((
        jsonwebtoken::jwk::EllipticCurve::P256,
        x.to_vec(),
        y.to_vec(),
    ))
}

fn ed_from_private(der: &[u8], _: &jsonwebtoken::jwk::EllipticCurve) -> Result<Vec<u8>, Error> {
    sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map(|p| p.public_key().as_ref().to_vec())
        .map_err(|_| ErrorKind::InvalidEddsaKey.into())
}

fn digest(data: &[u8], hash: jsonwebtoken::jwk::ThumbprintHash) -> Result<Vec<u8>, Error> {
    use jsonwebtoken::jwk::ThumbprintHash;
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: not_needed_rsa,
        rsa_pub_components_from_public_key: not_needed_rsa,
        ec_pub_components_from_private_key: ec_from_private,
        ed_pub_components_from_private_key: ed_from_private,
        compute_digest: digest,
    },
};

/// Installs the provider for the process. Idempotent.
pub fn install() {
    let _ = PROVIDER.install_default();
}

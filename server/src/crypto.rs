//! The crypto primitives `vaultd` is built from: AES-256-GCM encryption with AAD, random bytes,
//! HMAC-SHA256 and Argon2id key derivation. One family: ring for randomness and HMAC, aes-gcm
//! for the AEAD, argon2 for passphrases.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Failure of a crypto primitive. Carries no key material and no plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext was tampered with, moved to another record, or encrypted under another
    /// key.
    #[error("ciphertext failed authentication")]
    Decrypt,
    /// The plaintext is too long for one AES-GCM message.
    #[error("encryption failed: plaintext too long")]
    Encrypt,
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
    /// The passphrase key derivation was given unusable parameters.
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

/// A 256-bit symmetric key. Zeroized on drop; `Debug` never shows it; not `Clone` by accident.
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random_fill(bytes.as_mut())?;
        Ok(Self(bytes))
    }

    /// Takes a key from a slice; `None` if it is not exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub fn duplicate(&self) -> Self {
        Self(Zeroizing::new(*self.0))
    }

    /// Encrypts `plaintext` with a fresh random nonce; output is `nonce || ciphertext || tag`.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = self.cipher();
        let mut nonce = [0u8; NONCE_LEN];
        random_fill(&mut nonce)?;
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts what [`SecretKey::encrypt`] produced under the same AAD.
    pub fn decrypt(&self, encrypted: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if encrypted.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = encrypted.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.expose().into())
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn hmac(&self, data: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.expose());
        let tag = hmac::sign(&key, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

pub fn random_fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| CryptoError::Random)
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut buf = [0u8; N];
    random_fill(&mut buf)?;
    Ok(buf)
}

/// Argon2id parameters, stored beside each passphrase slot so they can be raised later
/// without breaking existing slots.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's first Argon2id recommendation: 46 MiB, 1 pass, 1 lane is the floor; we take
    /// 64 MiB and 3 passes since unsealing is rare.
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

/// Derives a key-encryption key from an operator passphrase with Argon2id.
pub fn derive_from_passphrase(
    passphrase: &[u8],
    salt: &[u8],
    params: KdfParams,
) -> Result<SecretKey, CryptoError> {
    let argon_params = argon2::Params::new(
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        Some(KEY_LEN),
    )
    .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(SecretKey(out))
}

/// Constant-time equality for secrets of equal or unequal length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Zeroizes a `String` holding a secret in place.
pub fn wipe(mut s: String) {
    s.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_only_decrypts_with_same_key_and_aad() {
        let key = SecretKey::generate().expect("key");
        let ciphertext = key.encrypt(b"hunter22", b"kv\0a").expect("encrypt");
        assert_eq!(
            &key.decrypt(&ciphertext, b"kv\0a").expect("decrypt")[..],
            b"hunter22"
        );
        assert!(key.decrypt(&ciphertext, b"kv\0b").is_err());
        let other = SecretKey::generate().expect("key");
        assert!(other.decrypt(&ciphertext, b"kv\0a").is_err());
        assert!(key.decrypt(&ciphertext[..20], b"kv\0a").is_err());
    }

    #[test]
    fn nonces_are_fresh() {
        let key = SecretKey::generate().expect("key");
        assert_ne!(
            key.encrypt(b"x", b"").expect("encrypt"),
            key.encrypt(b"x", b"").expect("encrypt")
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = SecretKey::from_slice(&[7u8; 32]).expect("key");
        assert_eq!(format!("{key:?}"), "SecretKey([REDACTED])");
    }
}

/// Lowercase hex of `bytes`, without a formatting call per byte (it is on the request path:
/// audit HMACs, storage keys).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn hex_is_lowercase_and_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}

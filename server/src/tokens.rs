//! The token store. Tokens are `vcs_` + 43 random base64url characters + a 6-character
//! checksum, so secret scanners can recognise them and typos are caught before any lookup.
//! They are never stored: records are keyed by HMAC-SHA256 of the token under a server key,
//! and accessors likewise.

use crate::clock::unix_now;
use crate::crypto;
use crate::store::sealed::{Keyring, SealedStore};
use crate::store::{PlainWrite, StoreError, Tree};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub const TOKEN_PREFIX: &str = "vcs_";
pub const ACCESSOR_PREFIX: &str = "vca_";
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;

/// A bearer token in clear. `Debug` is redacted; zeroized on drop.
pub struct Token(Zeroizing<String>);

impl Token {
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

fn checksum(prefix: &str, body: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{prefix}{body}").as_bytes());
    B64URL.encode(&digest.as_ref()[..4])
}

fn mint(prefix: &str) -> Result<String, StoreError> {
    let body = B64URL.encode(crypto::random_bytes::<32>()?);
    let sum = checksum(prefix, &body);
    Ok(format!("{prefix}{body}{sum}"))
}

/// Whether `token` has our shape and a valid checksum. Cheap; done before any store access.
pub fn well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(TOKEN_PREFIX) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.is_ascii() {
        return false;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    crypto::constant_time_eq(checksum(TOKEN_PREFIX, body).as_bytes(), sum.as_bytes())
}

/// What the store keeps for each token.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    pub accessor: String,
    pub policies: Vec<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    pub display_name: String,
    pub creation_time: u64,
    pub creation_ttl: u64,
    /// Unix seconds; `None` never expires (root).
    pub expire_time: Option<u64>,
    /// Hard cap on renewals, as seconds after creation; 0 = none.
    pub explicit_max_ttl: u64,
    /// Uses left; 0 = unlimited.
    pub num_uses: u32,
    pub path: String,
    pub renewable: bool,
    pub role: Option<String>,
    pub entity_id: String,
    pub last_renewal_time: Option<u64>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("policies", &self.policies)
            .field("path", &self.path)
            .field("expire_time", &self.expire_time)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_time.is_some_and(|t| now >= t)
    }

    pub fn ttl_remaining(&self, now: u64) -> u64 {
        self.expire_time.map(|t| t.saturating_sub(now)).unwrap_or(0)
    }

    /// Latest expiry renewals may reach.
    pub fn max_expire(&self, role_max_ttl: Option<u64>) -> Option<u64> {
        let caps = [
            (self.explicit_max_ttl > 0).then(|| self.creation_time + self.explicit_max_ttl),
            role_max_ttl.map(|m| self.creation_time + m),
        ];
        caps.into_iter().flatten().min()
    }
}

/// Parameters for a new token.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub policies: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub display_name: String,
    /// Seconds; 0 = no expiry (only for root).
    pub ttl: u64,
    pub explicit_max_ttl: u64,
    pub num_uses: u32,
    pub path: String,
    pub renewable: bool,
    pub role: Option<String>,
}

pub struct Issued {
    pub token: Token,
    pub record: TokenRecord,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Token operations over the sealed store.
#[derive(Clone, Debug)]
pub struct TokenStore {
    store: SealedStore,
    /// Read-modify-write of one token record (spending a use, renewing, revoking) happens
    /// under the stripe lock of its key, re-reading the record inside: concurrent requests
    /// cannot overspend uses or resurrect a revoked token.
    stripes: std::sync::Arc<[tokio::sync::Mutex<()>]>,
}

const STRIPES: usize = 64;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TokenStore {
    pub fn new(store: SealedStore) -> Self {
        Self {
            store,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, token_key: &[u8]) -> &tokio::sync::Mutex<()> {
        let index = token_key.first().copied().unwrap_or(0) as usize % self.stripes.len();
        &self.stripes[index]
    }

    fn token_key(&self, token: &str) -> Result<Vec<u8>, StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        Ok(keyring.hmac(token.as_bytes()).to_vec())
    }

    /// HMAC of a token or accessor as hex: what the audit log writes instead of the value.
    pub fn audit_hash(&self, value: &str) -> Option<String> {
        let keyring = self.store.keyring()?;
        Some(format!(
            "hmac-sha256:{}",
            hex(&keyring.hmac(format!("audit:{value}").as_bytes()))
        ))
    }

    /// Builds a record and the writes that store it, without applying them.
    pub fn prepare(
        keyring: &Keyring,
        new: NewToken,
        fixed_token: Option<String>,
    ) -> Result<(Issued, Vec<PlainWrite>), StoreError> {
        let token = match fixed_token {
            Some(t) => t,
            None => mint(TOKEN_PREFIX)?,
        };
        let accessor = mint(ACCESSOR_PREFIX)?;
        let now = unix_now();
        let record = TokenRecord {
            accessor: accessor.clone(),
            policies: new.policies,
            meta: new.meta,
            display_name: new.display_name,
            creation_time: now,
            creation_ttl: new.ttl,
            expire_time: (new.ttl > 0).then_some(now + new.ttl),
            explicit_max_ttl: new.explicit_max_ttl,
            num_uses: new.num_uses,
            path: new.path,
            renewable: new.renewable && new.ttl > 0,
            role: new.role,
            entity_id: String::new(),
            last_renewal_time: None,
        };
        let token_key = keyring.hmac(token.as_bytes()).to_vec();
        let writes = vec![
            (
                Tree::Tokens,
                token_key.clone(),
                Some(serde_json::to_vec(&record).unwrap_or_default()),
            ),
            (
                Tree::Accessors,
                keyring.hmac(accessor.as_bytes()).to_vec(),
                Some(token_key),
            ),
        ];
        Ok((
            Issued {
                token: Token::new(token),
                record,
            },
            writes,
        ))
    }

    /// Creates and durably stores a token.
    pub async fn create(&self, new: NewToken) -> Result<Issued, StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        let (issued, writes) = Self::prepare(&keyring, new, None)?;
        self.store.write(writes)?;
        self.store.sync().await?;
        Ok(issued)
    }

    /// Looks a token up; expired records are treated as absent and removed.
    pub fn lookup(&self, token: &str) -> Result<Option<TokenRecord>, StoreError> {
        // Minted tokens are always well formed, but a dev root token may be chosen by the
        // operator (`vaultd dev --root-token`), so only the length is a fast reject.
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        // Anything shaped like a minted token must carry a valid checksum: typos and
        // truncations are refused without touching the store.
        if token.starts_with(TOKEN_PREFIX) && !well_formed(token) {
            return Ok(None);
        }
        let key = self.token_key(token)?;
        self.lookup_by_key(&key)
    }

    fn lookup_by_key(&self, key: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        let Some(record) = self.store.get_json::<TokenRecord>(Tree::Tokens, key)? else {
            return Ok(None);
        };
        if record.is_expired(unix_now()) {
            self.remove(key, &record)?;
            return Ok(None);
        }
        Ok(Some(record))
    }

    /// Resolves an accessor to its token's storage key and record.
    pub fn lookup_accessor(
        &self,
        accessor: &str,
    ) -> Result<Option<(Vec<u8>, TokenRecord)>, StoreError> {
        let Some(token_key) = self
            .store
            .get(Tree::Accessors, &self.token_key(accessor)?)?
        else {
            return Ok(None);
        };
        Ok(self
            .lookup_by_key(&token_key)?
            .map(|r| (token_key.to_vec(), r)))
    }

    /// Spends one use of a limited-use token. Returns `false` if the token had none left (or
    /// is gone); the last use removes it.
    pub async fn spend_use(&self, token: &str) -> Result<bool, StoreError> {
        let key = self.token_key(token)?;
        {
            let _guard = self.stripe(&key).lock().await;
            let Some(record) = self.lookup_by_key(&key)? else {
                return Ok(false);
            };
            match record.num_uses {
                0 => return Ok(true),
                1 => self.remove(&key, &record)?,
                left => {
                    let mut next = record.clone();
                    next.num_uses = left - 1;
                    self.store.write(vec![(
                        Tree::Tokens,
                        key.clone(),
                        Some(serde_json::to_vec(&next).unwrap_or_default()),
                    )])?;
                }
            }
        }
        self.store.sync().await?;
        Ok(true)
    }

    /// Applies `change` to the current record of `token` under its lock and stores the
    /// result. `Ok(None)` if the token is gone (revoked, expired or used up meanwhile).
    pub async fn modify<E>(
        &self,
        token: &str,
        change: impl FnOnce(TokenRecord) -> Result<TokenRecord, E>,
    ) -> Result<Option<Result<TokenRecord, E>>, StoreError> {
        let key = self.token_key(token)?;
        let updated = {
            let _guard = self.stripe(&key).lock().await;
            let Some(record) = self.lookup_by_key(&key)? else {
                return Ok(None);
            };
            match change(record) {
                Ok(updated) => {
                    self.store.write(vec![(
                        Tree::Tokens,
                        key.clone(),
                        Some(serde_json::to_vec(&updated).unwrap_or_default()),
                    )])?;
                    updated
                }
                Err(e) => return Ok(Some(Err(e))),
            }
        };
        self.store.sync().await?;
        Ok(Some(Ok(updated)))
    }

    fn remove(&self, token_key: &[u8], record: &TokenRecord) -> Result<(), StoreError> {
        self.store.write(vec![
            (Tree::Tokens, token_key.to_vec(), None),
            (Tree::Accessors, self.token_key(&record.accessor)?, None),
        ])
    }

    pub async fn revoke(&self, token: &str) -> Result<bool, StoreError> {
        if token.is_empty() || token.len() > 512 {
            return Ok(false);
        }
        let key = self.token_key(token)?;
        {
            let _guard = self.stripe(&key).lock().await;
            let Some(record) = self.lookup_by_key(&key)? else {
                return Ok(false);
            };
            self.remove(&key, &record)?;
        }
        self.store.sync().await?;
        Ok(true)
    }

    pub async fn revoke_accessor(&self, accessor: &str) -> Result<bool, StoreError> {
        let Some((key, _)) = self.lookup_accessor(accessor)? else {
            return Ok(false);
        };
        {
            let _guard = self.stripe(&key).lock().await;
            let Some(record) = self.lookup_by_key(&key)? else {
                return Ok(false);
            };
            self.remove(&key, &record)?;
        }
        self.store.sync().await?;
        Ok(true)
    }

    /// Removes every expired token; returns how many.
    pub async fn sweep_expired(&self) -> Result<usize, StoreError> {
        let now = unix_now();
        let mut removed = 0;
        for (key, value) in self.store.scan(Tree::Tokens, b"")? {
            if let Ok(record) = serde_json::from_slice::<TokenRecord>(&value)
                && record.is_expired(now)
            {
                self.remove(&key, &record)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.store.sync().await?;
        }
        Ok(removed)
    }

    /// Number of live token records.
    pub fn count(&self) -> Result<usize, StoreError> {
        Ok(self.store.scan_keys(Tree::Tokens, b"")?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_well_formed_and_checked() {
        let t = mint(TOKEN_PREFIX).expect("mint");
        assert!(well_formed(&t));
        assert_eq!(t.len(), TOKEN_PREFIX.len() + BODY_LEN + CHECKSUM_LEN);
        let mut flipped = t.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        assert!(!well_formed(&String::from_utf8(flipped).expect("ascii")));
        assert!(!well_formed("hvs.abc"));
        assert!(!well_formed(""));
    }

    #[test]
    fn token_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Token::new("vcs_x".into())),
            "Token([REDACTED])"
        );
    }
}

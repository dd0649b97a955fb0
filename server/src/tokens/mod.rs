//! The token store. Tokens are `vcs_` + 43 random base64url characters + a 6-character
//! checksum, so secret scanners can recognise them and typos are caught before any lookup.
//! They are never stored: records are keyed by HMAC-SHA256 of the token under a server key
//! (the token's *storage key*). A token's accessor is its storage key under a keyed
//! permutation, encoded the same way (`vca_` + 43 base64url characters + checksum): vaultd
//! finds the record from it with no index record of its own; nobody can turn it into the token,
//! and without the lookup key nobody can tell which stored record it names. (Accessors minted
//! before this were random and indexed in the `accessors` tree; those are still found and
//! removed there.)
//!
//! - [`Token`] is a token vaultd minted, on its way to its holder; [`PresentedToken`] is one a
//!   client sent, parsed once at the edge ([`presented`]).
//! - The token tree, as Vault keeps it: a child records its parent's storage key, and the
//!   `token_parents` tree indexes children under their parent, so revoking a token revokes all
//!   its descendants in one atomic batch. A child's expiry never passes its parent's (capped at
//!   creation and at every renewal), so no descendant outlives an ancestor even before the
//!   sweeper removes expired records.

mod cache;
pub(crate) mod presented;

pub use presented::{PresentedToken, PresentedTokenError};

use crate::clock::unix_now;
use crate::crypto;
use crate::store::sealed::{Keyring, SealedStore};
use crate::store::{Guard, PlainWrite, StoreError, Tree};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use zeroize::Zeroizing;

pub(crate) const TOKEN_PREFIX: &str = "vcs_";
pub(crate) const ACCESSOR_PREFIX: &str = "vca_";
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Length of a storage key (HMAC-SHA256).
const KEY_LEN: usize = 32;

/// A bearer token vaultd minted, in clear, on its way to its holder. `Debug` is redacted;
/// zeroized on drop.
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
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(prefix.as_bytes());
    digest.update(body.as_bytes());
    B64URL.encode(&digest.finish().as_ref()[..4])
}

fn mint(prefix: &str) -> Result<String, StoreError> {
    Ok(encode_with_checksum(prefix, &crypto::random_bytes::<32>()?))
}

fn encode_with_checksum(prefix: &str, bytes: &[u8]) -> String {
    let body = B64URL.encode(bytes);
    let sum = checksum(prefix, &body);
    format!("{prefix}{body}{sum}")
}

/// The accessor of the token stored at `storage_key` (an HMAC, so [`KEY_LEN`] bytes; `None`
/// for anything else): the key under a keyed permutation, encoded like a token. The store's
/// keys are in clear on disk, so the accessor must not be their plain encoding: whoever holds
/// a copy of the data could otherwise name every token's row by the accessors that job logs
/// and identity tokens show. Only vaultd, with the lookup key, turns one into the other.
fn accessor_of(keyring: &Keyring, storage_key: &[u8]) -> Option<String> {
    let permuted = permute(keyring, storage_key, Direction::Forward)?;
    Some(encode_with_checksum(ACCESSOR_PREFIX, &permuted))
}

/// The storage key an accessor names, if it is shaped like one (prefix, length, checksum).
/// Whether a token is stored there, with this accessor, is the store's question.
fn storage_key_of(keyring: &Keyring, accessor: &str) -> Option<[u8; KEY_LEN]> {
    let rest = accessor.strip_prefix(ACCESSOR_PREFIX)?;
    if rest.len() != BODY_LEN + CHECKSUM_LEN {
        return None;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    if checksum(ACCESSOR_PREFIX, body) != sum {
        return None;
    }
    permute(keyring, &B64URL.decode(body).ok()?, Direction::Inverse)
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Forward,
    Inverse,
}

const HALF: usize = KEY_LEN / 2;
const ROUNDS: u8 = 4;

/// A four-round Feistel network over the two halves of a storage key, each round's function
/// the lookup HMAC of the round number and the half (domain-separated from every other use of
/// that key by a NUL no token or claim can hold): a keyed pseudorandom permutation of 32-byte
/// strings (Luby–Rackoff), and its inverse.
fn permute(keyring: &Keyring, bytes: &[u8], direction: Direction) -> Option<[u8; KEY_LEN]> {
    let (left, right) = bytes.split_at_checked(HALF)?;
    let (mut left, mut right): ([u8; HALF], [u8; HALF]) =
        (left.try_into().ok()?, right.try_into().ok()?);
    let round = |i: u8, half: &[u8; HALF]| -> [u8; HALF] {
        let mut input = [0u8; 10 + HALF];
        input[..9].copy_from_slice(b"accessor\0");
        input[9] = i;
        input[10..].copy_from_slice(half);
        let mac = keyring.hmac(&input);
        std::array::from_fn(|k| mac[k])
    };
    let xor = |a: [u8; HALF], b: [u8; HALF]| -> [u8; HALF] { std::array::from_fn(|k| a[k] ^ b[k]) };
    if direction == Direction::Forward {
        for i in 0..ROUNDS {
            (left, right) = (right, xor(left, round(i, &right)));
        }
    } else {
        for i in (0..ROUNDS).rev() {
            (left, right) = (xor(right, round(i, &left)), left);
        }
    }
    let mut out = [0u8; KEY_LEN];
    out[..HALF].copy_from_slice(&left);
    out[HALF..].copy_from_slice(&right);
    Some(out)
}

/// Whether `token` is a vaultd token with a valid checksum. Cheap; no store access.
pub(crate) fn well_formed(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX) && token.parse::<PresentedToken>().is_ok()
}

use crate::crypto::hex;

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_record(record: &TokenRecord) -> Vec<u8> {
    serde_json::to_vec(record)
        .expect("a token record (strings, integers, maps of strings) serialises")
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
    /// The parent's storage key (hex); `None` for an orphan.
    #[serde(default)]
    pub parent: Option<String>,
    /// The verified claims of the JWT login that issued the token (strings and integers), for
    /// templated policy paths; `None` for tokens from anywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The accessor as audit lines write it, once computed for this record in memory.
    #[serde(skip)]
    pub(crate) audit_accessor: AuditMemo,
}

/// [`TokenStore::audit_accessor`]'s memo: in memory only (never stored), and no part of a
/// record's identity (all memos compare equal), so a record read again equals the one cached.
#[derive(Clone, Default)]
pub(crate) struct AuditMemo(std::sync::OnceLock<String>);

impl PartialEq for AuditMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("policies", &self.policies)
            .field("path", &self.path)
            .field("expire_time", &self.expire_time)
            .field("orphan", &self.is_orphan())
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    pub fn is_orphan(&self) -> bool {
        self.parent.is_none()
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

    /// The latest this token can ever be valid: its expiry if it cannot be renewed, else the
    /// renewal cap. `None` = no limit (root).
    pub fn latest_expiry(&self, role_max_ttl: Option<u64>) -> Option<u64> {
        let expiry = self.expire_time?;
        if self.renewable {
            Some(
                self.max_expire(role_max_ttl)
                    .map_or(expiry, |cap| cap.max(expiry)),
            )
        } else {
            Some(expiry)
        }
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
    /// Unix seconds the token may not outlive (its parent's expiry), whatever `ttl` says.
    pub not_after: Option<u64>,
    /// The verified login claims, for templated policy paths (JWT logins only).
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
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

/// How a revocation treats the token's descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Descendants {
    /// Revoke them all (Vault's `revoke`, `revoke-self`, `revoke-accessor`, expiry).
    Revoke,
    /// Keep them, as orphans (Vault's `revoke-orphan`).
    Orphan,
}

/// Token operations over the sealed store.
#[derive(Clone, Debug)]
pub struct TokenStore {
    store: SealedStore,
    /// Read-modify-write of one token record (spending a use, renewing, revoking, adding a
    /// child) happens under the stripe lock of its storage key, re-reading the record inside:
    /// concurrent requests cannot overspend uses, resurrect a revoked token or add a child to
    /// a token being revoked. Revoking a token that has children takes every stripe, in order.
    stripes: std::sync::Arc<[tokio::sync::Mutex<()>]>,
    /// Records of recent lookups, exact through the store's watch over token writes.
    cache: std::sync::Arc<cache::TokenCache>,
}

const STRIPES: usize = 64;

impl TokenStore {
    pub fn new(store: SealedStore) -> Self {
        Self {
            store,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            cache: std::sync::Arc::default(),
        }
    }

    fn stripe(&self, storage_key: &[u8]) -> &tokio::sync::Mutex<()> {
        let index = storage_key.first().copied().unwrap_or(0) as usize % self.stripes.len();
        &self.stripes[index]
    }

    /// The storage key of a token or accessor: its HMAC under the keyring's lookup key.
    fn hmac_of(&self, value: &str) -> Result<Vec<u8>, StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        Ok(keyring.hmac(value.as_bytes()).to_vec())
    }

    /// [`TokenStore::audit_hash`] of `record`'s accessor, computed once per record in memory
    /// (a cached record serves many requests, each with an audit line naming it).
    pub fn audit_accessor(&self, record: &TokenRecord) -> Option<String> {
        if let Some(hash) = record.audit_accessor.0.get() {
            return Some(hash.clone());
        }
        let hash = self.audit_hash(&record.accessor)?;
        Some(record.audit_accessor.0.get_or_init(|| hash).clone())
    }

    /// HMAC of a token or accessor as hex: what the audit log writes instead of the value.
    pub fn audit_hash(&self, value: &str) -> Option<String> {
        let keyring = self.store.keyring()?;
        Some(format!(
            "hmac-sha256:{}",
            hex(&keyring.hmac(format!("audit:{value}").as_bytes()))
        ))
    }

    /// Builds a record and the writes that store it, without applying them. `parent` is the
    /// parent's storage key for a child token.
    pub fn prepare(
        keyring: &Keyring,
        new: NewToken,
        fixed_token: Option<String>,
        parent: Option<&[u8]>,
    ) -> Result<(Issued, Vec<PlainWrite>), StoreError> {
        let token = match fixed_token {
            Some(t) => t,
            None => mint(TOKEN_PREFIX)?,
        };
        let storage_key = keyring.hmac(token.as_bytes()).to_vec();
        let accessor = accessor_of(keyring, &storage_key)
            .expect("a storage key is an HMAC-SHA256, KEY_LEN bytes");
        let now = unix_now();
        let record = TokenRecord {
            accessor: accessor.clone(),
            policies: new.policies,
            meta: new.meta,
            display_name: new.display_name,
            creation_time: now,
            creation_ttl: new.ttl,
            expire_time: (new.ttl > 0).then(|| {
                let expiry = now + new.ttl;
                new.not_after.map_or(expiry, |cap| expiry.min(cap))
            }),
            explicit_max_ttl: new.explicit_max_ttl,
            num_uses: new.num_uses,
            path: new.path,
            renewable: new.renewable && new.ttl > 0,
            role: new.role,
            entity_id: String::new(),
            last_renewal_time: None,
            parent: parent.map(hex),
            claims: new.claims,
            audit_accessor: AuditMemo::default(),
        };
        // One record: the accessor needs no index of its own (it names the storage key).
        let mut writes = vec![(
            Tree::Tokens,
            storage_key.clone(),
            Some(encode_record(&record)),
        )];
        if let Some(parent) = parent {
            writes.push((
                Tree::TokenParents,
                [parent, storage_key.as_slice()].concat(),
                Some(Vec::new()),
            ));
        }
        Ok((
            Issued {
                token: Token::new(token),
                record,
            },
            writes,
        ))
    }

    /// Creates and durably stores an orphan token (no parent).
    pub async fn create(&self, new: NewToken) -> Result<Issued, StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        let (issued, writes) = Self::prepare(&keyring, new, None, None)?;
        // Combined with the records of concurrent logins: one batch, one sync.
        self.store.write_durable(writes).await?;
        Ok(issued)
    }

    /// [`TokenStore::create`], only if nothing is stored at `once` (tree, key, plaintext),
    /// which lands with the token: a login's spent `jti`. `Ok(None)`: it was there.
    pub async fn create_once(
        &self,
        new: NewToken,
        once: (Tree, Vec<u8>, Vec<u8>),
    ) -> Result<Option<Issued>, StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        let (issued, writes) = Self::prepare(&keyring, new, None, None)?;
        Ok(self
            .store
            .write_durable_once(once, writes)
            .await?
            .then_some(issued))
    }

    /// Creates and durably stores a child of `parent`. `Ok(None)` if the parent is gone
    /// (revoked, expired or used up meanwhile): no child is created for a dead parent.
    ///
    /// The batch rewrites the parent's record (same content, fresh ciphertext) guarded by
    /// the bytes read: a concurrent revocation of the parent, on any replica, either sees
    /// this child or makes this batch fail and retry (and then find the parent gone).
    pub async fn create_child(
        &self,
        parent: &PresentedToken,
        new: NewToken,
    ) -> Result<Option<Issued>, StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        let parent_key = self.hmac_of(parent.expose())?;
        let issued = {
            let _guard = self.stripe(&parent_key).lock().await;
            loop {
                let Some((record, guard)) = self.read_live(&parent_key).await? else {
                    return Ok(None);
                };
                // Capped by the parent as read here, under its lock: the child never expires
                // after it, however long the wait for the lock was.
                let mut child = new.clone();
                child.not_after = match (child.not_after, record.expire_time) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let (issued, mut writes) = Self::prepare(&keyring, child, None, Some(&parent_key))?;
                writes.push((
                    Tree::Tokens,
                    parent_key.clone(),
                    Some(encode_record(&record)),
                ));
                if self.store.write_if(vec![guard], writes).await? {
                    break issued;
                }
            }
        };
        self.store.sync().await?;
        Ok(Some(issued))
    }

    /// Looks a token up; expired records are treated as absent and removed. Answered from
    /// the cache when nothing was written to the token tree since the record was read.
    pub async fn lookup(
        &self,
        token: &PresentedToken,
    ) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let key = self.hmac_of(token.expose())?;
        let Some(watch) = self.store.watch_of(Tree::Tokens) else {
            return Ok(self.lookup_by_key(&key).await?.map(Arc::new));
        };
        if let Some(record) = self.cache.get(watch, &key)
            && !record.is_expired(unix_now())
        {
            return Ok(Some(record));
        }
        let epoch = watch.quiet_epoch();
        let record = self.lookup_by_key(&key).await?.map(Arc::new);
        if let (Some(epoch), Some(record)) = (epoch, &record) {
            self.cache.keep(watch, epoch, &key, record);
        }
        Ok(record)
    }

    async fn lookup_by_key(&self, key: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.read_live(key).await?.map(|(record, _)| record))
    }

    /// The live record at `key` and the guard for changing it; an expired record is removed
    /// (with its descendants, which expire no later) and reads as absent.
    async fn read_live(&self, key: &[u8]) -> Result<Option<(TokenRecord, Guard)>, StoreError> {
        let read = self
            .store
            .get_versioned_json::<TokenRecord>(Tree::Tokens, key)
            .await?;
        let Some(record) = read.value else {
            return Ok(None);
        };
        if record.is_expired(unix_now()) {
            // Guarded like every other write to a token: a plain delete could race a guarded
            // write of the same record on another replica and leave half a token behind.
            // If it lands, the token and its (no later expiring) subtree are gone; if not,
            // someone else changed or removed it, and it reads as absent either way.
            let (writes, mut guards) = self
                .removal_writes(key, &record, Descendants::Revoke)
                .await?;
            guards.push(read.guard);
            self.store.write_if(guards, writes).await?;
            return Ok(None);
        }
        Ok(Some((record, read.guard)))
    }

    /// The live parent of a child token's record; `None` for an orphan or a parent that is
    /// gone (the child is then being revoked with it).
    pub async fn parent_of(&self, record: &TokenRecord) -> Result<Option<TokenRecord>, StoreError> {
        match record.parent.as_deref().and_then(unhex) {
            Some(key) => self.lookup_by_key(&key).await,
            None => Ok(None),
        }
    }

    /// Resolves an accessor to its token's storage key and record: the key it names, if the
    /// record there has this accessor, else (an accessor minted at random before accessors
    /// named their storage keys) the key its index record holds.
    pub async fn lookup_accessor(
        &self,
        accessor: &str,
    ) -> Result<Option<(Vec<u8>, TokenRecord)>, StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        if let Some(storage_key) = storage_key_of(&keyring, accessor)
            && let Some(record) = self.lookup_by_key(&storage_key).await?
            && record.accessor == accessor
        {
            return Ok(Some((storage_key.to_vec(), record)));
        }
        let Some(storage_key) = self
            .store
            .get(Tree::Accessors, &self.hmac_of(accessor)?)
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .lookup_by_key(&storage_key)
            .await?
            .filter(|record| record.accessor == accessor)
            .map(|r| (storage_key.to_vec(), r)))
    }

    /// Spends one use of a limited-use token. Returns `false` if the token had none left (or
    /// is gone); the last use removes it. Guarded by the record read, so uses spent through
    /// several replicas at once never add up to more than the token had.
    pub async fn spend_use(&self, token: &PresentedToken) -> Result<bool, StoreError> {
        let key = self.hmac_of(token.expose())?;
        {
            let _guard = self.stripe(&key).lock().await;
            loop {
                let Some((record, guard)) = self.read_live(&key).await? else {
                    return Ok(false);
                };
                let writes = match record.num_uses {
                    0 => return Ok(true),
                    1 => {
                        self.removal_writes(&key, &record, Descendants::Revoke)
                            .await?
                            .0
                    }
                    left => {
                        let mut next = record.clone();
                        next.num_uses = left - 1;
                        vec![(Tree::Tokens, key.clone(), Some(encode_record(&next)))]
                    }
                };
                if self.store.write_if(vec![guard], writes).await? {
                    break;
                }
            }
        }
        self.store.sync().await?;
        Ok(true)
    }

    /// Applies `change` to the current record of `token` and stores the result, guarded by
    /// the record read (re-read and re-applied on a concurrent change). `Ok(None)` if the
    /// token is gone (revoked, expired or used up meanwhile).
    pub async fn modify<E>(
        &self,
        token: &PresentedToken,
        change: impl Fn(TokenRecord) -> Result<TokenRecord, E>,
    ) -> Result<Option<Result<TokenRecord, E>>, StoreError> {
        let key = self.hmac_of(token.expose())?;
        let updated = {
            let _guard = self.stripe(&key).lock().await;
            loop {
                let Some((record, guard)) = self.read_live(&key).await? else {
                    return Ok(None);
                };
                let updated = match change(record) {
                    Ok(updated) => updated,
                    Err(e) => return Ok(Some(Err(e))),
                };
                let writes = vec![(Tree::Tokens, key.clone(), Some(encode_record(&updated)))];
                if self.store.write_if(vec![guard], writes).await? {
                    break updated;
                }
            }
        };
        self.store.sync().await?;
        Ok(Some(Ok(updated)))
    }

    /// The storage keys of a token's direct children.
    async fn children_of(&self, key: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .store
            .scan_keys(Tree::TokenParents, key)
            .await?
            .into_iter()
            .filter(|entry| entry.len() == 2 * KEY_LEN)
            .map(|entry| entry[KEY_LEN..].to_vec())
            .collect())
    }

    /// The writes that remove one token (record, a legacy accessor index record, its entry
    /// under its parent) and, by `descendants`, either every descendant or the children's
    /// links to it; with the guards on every record read, so the batch lands only if none
    /// changed meanwhile.
    async fn removal_writes(
        &self,
        key: &[u8],
        record: &TokenRecord,
        descendants: Descendants,
    ) -> Result<(Vec<PlainWrite>, Vec<Guard>), StoreError> {
        let keyring = self.store.keyring().ok_or(StoreError::Sealed)?;
        let mut writes = Vec::new();
        let mut guards = Vec::new();
        if let Some(parent) = record.parent.as_deref().and_then(unhex) {
            writes.push((Tree::TokenParents, [parent.as_slice(), key].concat(), None));
        }
        let mut seen = HashSet::new();
        let mut pending = vec![(key.to_vec(), record.clone())];
        let mut top = true;
        while let Some((key, record)) = pending.pop() {
            if !seen.insert(key.clone()) {
                continue;
            }
            writes.push((Tree::Tokens, key.clone(), None));
            if Some(&record.accessor) != accessor_of(&keyring, &key).as_ref() {
                // An accessor minted at random, before accessors named their storage keys.
                writes.push((Tree::Accessors, self.hmac_of(&record.accessor)?, None));
            }
            for child in self.children_of(&key).await? {
                writes.push((Tree::TokenParents, [key.as_slice(), &child].concat(), None));
                let read = self
                    .store
                    .get_versioned_json::<TokenRecord>(Tree::Tokens, &child)
                    .await?;
                match read.value {
                    Some(mut orphan) if top && descendants == Descendants::Orphan => {
                        orphan.parent = None;
                        writes.push((Tree::Tokens, child, Some(encode_record(&orphan))));
                        guards.push(read.guard);
                    }
                    Some(child_record) => {
                        guards.push(read.guard);
                        pending.push((child, child_record));
                    }
                    // A dangling index entry (its child already gone) is dropped above.
                    None => {}
                }
            }
            top = false;
        }
        Ok((writes, guards))
    }

    /// Removes `key` and (by `descendants`) its subtree in one atomic batch, guarded by every
    /// record it read (retried on a concurrent change, on any replica), under the token's
    /// stripe lock, or every stripe when it has children. Returns the storage keys of the
    /// tokens removed (their leases end with them); `None` if the token was already gone.
    async fn remove(
        &self,
        key: &[u8],
        descendants: Descendants,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let removed = {
            let own = self.stripe(key).lock().await;
            // Children may be added or spent under their own stripes: with any, hold them all.
            let _all = if self.children_of(key).await?.is_empty() {
                vec![own]
            } else {
                drop(own);
                let mut guards = Vec::with_capacity(self.stripes.len());
                for stripe in self.stripes.iter() {
                    guards.push(stripe.lock().await);
                }
                guards
            };
            loop {
                let Some((record, guard)) = self.read_live(key).await? else {
                    return Ok(None);
                };
                let (writes, mut guards) = self.removal_writes(key, &record, descendants).await?;
                let removed: Vec<Vec<u8>> = writes
                    .iter()
                    .filter(|(tree, _, value)| *tree == Tree::Tokens && value.is_none())
                    .map(|(_, key, _)| key.clone())
                    .collect();
                guards.push(guard);
                if self.store.write_if(guards, writes).await? {
                    break removed;
                }
            }
        };
        self.store.sync().await?;
        Ok(Some(removed))
    }

    /// The storage key of a presented token (what leases record as their owner).
    pub fn storage_key(&self, token: &PresentedToken) -> Result<Vec<u8>, StoreError> {
        self.hmac_of(token.expose())
    }

    /// Revokes a token and all its descendants; the storage keys removed, `None` if it was
    /// already gone.
    pub async fn revoke(&self, token: &PresentedToken) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let key = self.hmac_of(token.expose())?;
        self.remove(&key, Descendants::Revoke).await
    }

    /// Revokes a token alone; its children become orphans.
    pub async fn revoke_orphan(
        &self,
        token: &PresentedToken,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let key = self.hmac_of(token.expose())?;
        self.remove(&key, Descendants::Orphan).await
    }

    /// Revokes the token of an accessor and all its descendants.
    pub async fn revoke_accessor(
        &self,
        accessor: &str,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let Some((key, _)) = self.lookup_accessor(accessor).await? else {
            return Ok(None);
        };
        self.remove(&key, Descendants::Revoke).await
    }

    /// Removes every expired token (and their descendants, which expire no later); returns
    /// how many tokens were expired. Safe on every replica at once: removal is idempotent.
    pub async fn sweep_expired(&self) -> Result<usize, StoreError> {
        let now = unix_now();
        let mut removed = 0;
        for (key, value) in self.store.scan(Tree::Tokens, b"").await? {
            if let Ok(record) = serde_json::from_slice::<TokenRecord>(&value)
                && record.is_expired(now)
            {
                self.remove(&key, Descendants::Revoke).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Number of live token records.
    pub async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.store.scan_keys(Tree::Tokens, b"").await?.len())
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

    use crate::store::memory::unsealed_store;

    fn limited(uses: u32) -> NewToken {
        NewToken {
            policies: vec!["default".into()],
            ttl: 3600,
            num_uses: uses,
            renewable: true,
            ..Default::default()
        }
    }

    async fn store_and_token(new: NewToken) -> (TokenStore, PresentedToken, TokenRecord) {
        let (sealed, _) = unsealed_store().await;
        let tokens = TokenStore::new(sealed);
        let issued = tokens.create(new).await.expect("create");
        let presented: PresentedToken = issued.token.expose().parse().expect("well formed");
        (tokens, presented, issued.record)
    }

    /// The cache answers repeated lookups, and every change to a record — a renewal, a
    /// revocation through another handle of the store, a seal — is seen by the next lookup.
    #[tokio::test]
    async fn cached_lookups_see_every_change_at_once() {
        let (tokens, token, _) = store_and_token(limited(0)).await;
        let other = tokens.clone();
        let watch = tokens
            .store
            .watch_of(Tree::Tokens)
            .expect("the memory backend is exclusive");
        assert!(tokens.lookup(&token).await.expect("lookup").is_some());
        let key = tokens.storage_key(&token).expect("key");
        assert!(tokens.cache.get(watch, &key).is_some(), "kept after a read");

        let renewed = other
            .modify(&token, |mut r| {
                r.meta.insert("renewed".into(), "yes".into());
                Ok::<_, ()>(r)
            })
            .await
            .expect("modify");
        assert!(renewed.is_some());
        assert!(tokens.cache.get(watch, &key).is_none(), "a write drops it");
        let seen = tokens.lookup(&token).await.expect("lookup").expect("live");
        assert_eq!(seen.meta.get("renewed").map(String::as_str), Some("yes"));

        assert!(tokens.lookup(&token).await.expect("lookup").is_some());
        other.revoke(&token).await.expect("revoke");
        assert!(tokens.lookup(&token).await.expect("lookup").is_none());

        // A seal drops every entry (and lookups answer sealed meanwhile).
        let (tokens, token, _) = store_and_token(limited(0)).await;
        assert!(tokens.lookup(&token).await.expect("lookup").is_some());
        let watch = tokens.store.watch_of(Tree::Tokens).expect("exclusive");
        let epoch = watch.quiet_epoch().expect("quiet");
        tokens.store.seal();
        assert!(!watch.still(epoch));
        assert!(tokens.lookup(&token).await.is_err());
    }

    #[tokio::test]
    async fn the_audit_accessor_is_the_audit_hash_kept_in_memory_only() {
        let (tokens, _token, record) = store_and_token(limited(0)).await;
        let hash = tokens.audit_accessor(&record).expect("unsealed");
        assert_eq!(tokens.audit_hash(&record.accessor), Some(hash.clone()));
        assert_eq!(
            tokens.audit_accessor(&record),
            Some(hash.clone()),
            "memoised"
        );
        let stored = encode_record(&record);
        assert!(!String::from_utf8_lossy(&stored).contains(&hash));
        let read_again: TokenRecord = serde_json::from_slice(&stored).expect("parses");
        assert!(read_again == record, "the memo is no part of the record");
    }

    /// A read that overlapped a write is not kept: the write may have landed after it.
    #[tokio::test]
    async fn a_read_overlapping_a_write_is_not_kept() {
        let (tokens, token, record) = store_and_token(limited(0)).await;
        let watch = tokens.store.watch_of(Tree::Tokens).expect("exclusive");
        let key = tokens.storage_key(&token).expect("key");
        let epoch = watch.quiet_epoch().expect("quiet");
        let write = watch.begin();
        tokens
            .cache
            .keep(watch, epoch, &key, &Arc::new(record.clone()));
        drop(write);
        assert!(tokens.cache.get(watch, &key).is_none());
        // Limited-use tokens are never kept.
        let epoch = watch.quiet_epoch().expect("quiet");
        let limited = TokenRecord {
            num_uses: 3,
            ..record
        };
        tokens.cache.keep(watch, epoch, &key, &Arc::new(limited));
        assert!(tokens.cache.get(watch, &key).is_none());
    }

    #[tokio::test]
    async fn the_last_use_removes_the_token_and_its_accessor() {
        let (tokens, token, record) = store_and_token(limited(2)).await;
        assert!(tokens.spend_use(&token).await.expect("spend"));
        assert_eq!(
            tokens
                .lookup(&token)
                .await
                .expect("lookup")
                .map(|r| r.num_uses),
            Some(1)
        );
        assert!(tokens.spend_use(&token).await.expect("spend"));
        assert!(tokens.lookup(&token).await.expect("lookup").is_none());
        assert!(!tokens.spend_use(&token).await.expect("spend"));
        assert!(
            tokens
                .lookup_accessor(&record.accessor)
                .await
                .expect("lookup")
                .is_none()
        );
        assert_eq!(tokens.count().await.expect("count"), 0);
    }

    #[tokio::test]
    async fn revoking_an_accessor_revokes_its_token_and_subtree() {
        let (tokens, parent, record) = store_and_token(limited(0)).await;
        let child = tokens
            .create_child(&parent, limited(0))
            .await
            .expect("create child")
            .expect("parent alive");
        let child: PresentedToken = child.token.expose().parse().expect("well formed");
        let grandchild = tokens
            .create_child(&child, limited(0))
            .await
            .expect("create")
            .expect("alive");
        let grandchild: PresentedToken = grandchild.token.expose().parse().expect("well formed");
        assert!(revoked(&tokens, &record.accessor).await);
        for t in [&parent, &child, &grandchild] {
            assert!(tokens.lookup(t).await.expect("lookup").is_none());
        }
        assert!(!revoked(&tokens, &record.accessor).await, "revoked twice");
        assert_eq!(tokens.count().await.expect("count"), 0);
        // No index entry is left behind either.
        assert!(
            tokens
                .store
                .scan_keys(Tree::TokenParents, b"")
                .await
                .expect("scan")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_accessor_is_the_storage_key_and_needs_no_record_of_its_own() {
        let (tokens, token, record) = store_and_token(limited(0)).await;
        let key = tokens.storage_key(&token).expect("key");
        let keyring = tokens.store.keyring().expect("unsealed");
        assert_eq!(
            storage_key_of(&keyring, &record.accessor).map(|k| k.to_vec()),
            Some(key.clone())
        );
        // Not the key's plain encoding: the store's keys (in clear on disk) do not name it.
        assert!(!record.accessor.contains(&B64URL.encode(&key)[..8]));
        assert!(record.accessor.starts_with(ACCESSOR_PREFIX));
        assert_eq!(record.accessor.len(), token.expose().len());
        assert_ne!(&record.accessor[4..], &token.expose()[4..]);
        let keys = |tree| {
            let tokens = tokens.clone();
            async move { tokens.store.scan_keys(tree, b"").await.expect("scan") }
        };
        assert!(keys(Tree::Accessors).await.is_empty(), "no index record");
        assert_eq!(keys(Tree::Tokens).await, vec![key.clone()]);
        assert_eq!(resolved(&tokens, &record.accessor).await, Some(key.clone()));

        // A damaged accessor, the token itself, or a well-formed accessor of nothing: not found.
        let mut damaged = record.accessor.clone().into_bytes();
        damaged[10] = if damaged[10] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).expect("ascii");
        let nothing = accessor_of(&keyring, &[7u8; KEY_LEN]).expect("32 bytes");
        for wrong in [damaged.as_str(), token.expose(), &nothing, "vca_", ""] {
            assert_eq!(resolved(&tokens, wrong).await, None, "{wrong:?} resolved");
        }
    }

    #[tokio::test]
    async fn the_accessor_permutation_inverts_and_depends_on_the_lookup_key() {
        let (one, _) = unsealed_store().await;
        let (other, _) = unsealed_store().await;
        let (one, other) = (one.keyring().expect("key"), other.keyring().expect("key"));
        for key in [[0u8; KEY_LEN], [0xff; KEY_LEN], keyring_sample(&one)] {
            let accessor = accessor_of(&one, &key).expect("32 bytes");
            assert_eq!(storage_key_of(&one, &accessor), Some(key));
            assert_ne!(accessor_of(&other, &key), Some(accessor.clone()));
            assert_ne!(storage_key_of(&other, &accessor), Some(key));
            assert_ne!(
                &B64URL.decode(&accessor[4..4 + BODY_LEN]).expect("b64")[..],
                &key
            );
        }
        assert_eq!(accessor_of(&one, &[1u8; KEY_LEN - 1]), None);
        assert_eq!(accessor_of(&one, &[1u8; KEY_LEN + 1]), None);
    }

    fn keyring_sample(keyring: &Keyring) -> [u8; KEY_LEN] {
        keyring.hmac(b"vcs_sample")
    }

    /// Whether revoking by `accessor` found a token to revoke.
    async fn revoked(tokens: &TokenStore, accessor: &str) -> bool {
        let removed = tokens.revoke_accessor(accessor).await.expect("revoke");
        removed.is_some()
    }

    /// The storage key `accessor` resolves to.
    async fn resolved(tokens: &TokenStore, accessor: &str) -> Option<Vec<u8>> {
        let found = tokens.lookup_accessor(accessor).await.expect("lookup");
        found.map(|(key, _)| key)
    }

    /// A token stored before accessors were storage keys: a random accessor, indexed in the
    /// accessors tree. It is still found by its accessor, and removed with its index record.
    #[tokio::test]
    async fn an_accessor_minted_at_random_before_is_still_found_and_removed() {
        let (sealed, _) = unsealed_store().await;
        let tokens = TokenStore::new(sealed);
        let keyring = tokens.store.keyring().expect("unsealed");
        let (issued, _) = TokenStore::prepare(&keyring, limited(0), None, None).expect("prepare");
        let mut record = issued.record;
        record.accessor = mint(ACCESSOR_PREFIX).expect("mint");
        let key = keyring.hmac(issued.token.expose().as_bytes()).to_vec();
        tokens
            .store
            .write_durable(vec![
                (Tree::Tokens, key.clone(), Some(encode_record(&record))),
                (
                    Tree::Accessors,
                    keyring.hmac(record.accessor.as_bytes()).to_vec(),
                    Some(key.clone()),
                ),
            ])
            .await
            .expect("write");
        // Found through its index record; the storage key's own encoding is not its accessor.
        assert_eq!(resolved(&tokens, &record.accessor).await, Some(key.clone()));
        let derived = accessor_of(&keyring, &key).expect("32 bytes");
        assert_eq!(resolved(&tokens, &derived).await, None);
        assert!(revoked(&tokens, &record.accessor).await);
        let token: PresentedToken = issued.token.expose().parse().expect("well formed");
        assert!(tokens.lookup(&token).await.expect("lookup").is_none());
        for tree in [Tree::Tokens, Tree::Accessors] {
            assert!(
                tokens
                    .store
                    .scan_keys(tree, b"")
                    .await
                    .expect("scan")
                    .is_empty(),
                "{tree:?} left behind"
            );
        }
    }

    #[tokio::test]
    async fn revoke_orphan_keeps_the_children_as_orphans() {
        let (tokens, parent, _) = store_and_token(limited(0)).await;
        let child = tokens
            .create_child(&parent, limited(0))
            .await
            .expect("create")
            .expect("alive");
        let child: PresentedToken = child.token.expose().parse().expect("well formed");
        assert!(
            tokens
                .revoke_orphan(&parent)
                .await
                .expect("revoke")
                .is_some()
        );
        let record = tokens.lookup(&child).await.expect("lookup").expect("kept");
        assert!(record.is_orphan());
        // A child of a revoked parent is never created.
        assert!(
            tokens
                .create_child(&parent, limited(0))
                .await
                .expect("create")
                .is_none()
        );
    }

    #[tokio::test]
    async fn modify_sees_the_current_record_and_refuses_a_gone_token() {
        let (tokens, token, _) = store_and_token(limited(0)).await;
        let updated = tokens
            .modify(&token, |mut r| {
                r.display_name = "renamed".into();
                Ok::<_, ()>(r)
            })
            .await
            .expect("modify")
            .expect("present")
            .expect("changed");
        assert_eq!(updated.display_name, "renamed");
        assert!(tokens.revoke(&token).await.expect("revoke").is_some());
        assert!(
            tokens
                .modify(&token, Ok::<_, ()>)
                .await
                .expect("modify")
                .is_none()
        );
    }

    #[test]
    fn token_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Token::new("vcs_x".into())),
            "Token([REDACTED])"
        );
    }
}

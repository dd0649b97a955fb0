//! Storage. [`Backend`] is the narrow interface every persistent byte goes through (get, put,
//! compare-and-swap, prefix scan, atomic batch, create-once batch, durability barrier), so
//! another engine can replace sled without touching handlers, crypto or policy code.
//!
//! - [`keyring`]: the key hierarchy (key slots → root key → keyring of data keys) and the
//!   operations on it: init, unseal, rotate.
//! - [`sealed`]: [`sealed::SealedStore`], which encrypts every record on its way into a
//!   backend with the unsealed keyring, and is sealed (keys dropped) or unsealed.
//! - [`sled_backend`]: the sled engine; `memory` (tests and the `test-support` feature):
//!   an in-memory one with fault injection.
//! - [`group_commit`]: one fsync shared by many concurrent writers.

pub mod group_commit;
pub mod keyring;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod postgres;
pub mod sealed;
pub mod sled_backend;
pub mod write_watch;

/// Logical trees. Each is a key namespace in the backend and part of every record's AAD, so a
/// ciphertext moved from one tree to another fails to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Records outside the record encryption: init marker, key slots, the encrypted keyring.
    Sys,
    /// KV v2 metadata and versions.
    Kv,
    /// Token records keyed by HMAC of the token.
    Tokens,
    /// Accessor index keyed by HMAC of the accessor: only for tokens minted before accessors
    /// became their storage key under a keyed permutation (see `crate::tokens`); nothing new
    /// is written here.
    Accessors,
    /// Issuers, roles and policy documents.
    Config,
    /// Spent JWT ids (`jti`), keyed by HMAC, until the JWT expires.
    Jti,
    /// The token tree: `parent key || child key` (both HMAC storage keys) for each child token,
    /// so revoking a token finds its descendants with a prefix scan.
    TokenParents,
    /// Identity-token keys (sealed private keys), roles and issuer config.
    Identity,
    /// Database secrets engine: connections (sealed admin passwords) and roles.
    Database,
    /// Leases of minted credentials (`lease/<id>`) and their index by token (`owner/…`).
    Leases,
}

impl Tree {
    /// Every tree, for whole-store copies (`vaultd operator migrate`).
    pub const ALL: [Tree; 10] = [
        Tree::Sys,
        Tree::Kv,
        Tree::Tokens,
        Tree::Accessors,
        Tree::Config,
        Tree::Jti,
        Tree::TokenParents,
        Tree::Identity,
        Tree::Database,
        Tree::Leases,
    ];

    pub fn tag(self) -> u8 {
        match self {
            Tree::Sys => b's',
            Tree::Kv => b'k',
            Tree::Tokens => b't',
            Tree::Accessors => b'a',
            Tree::Config => b'c',
            Tree::Jti => b'j',
            Tree::TokenParents => b'p',
            Tree::Identity => b'i',
            Tree::Database => b'd',
            Tree::Leases => b'l',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tree::Sys => "sys",
            Tree::Kv => "kv",
            Tree::Tokens => "tokens",
            Tree::Accessors => "accessors",
            Tree::Config => "config",
            Tree::Jti => "jti",
            Tree::TokenParents => "token_parents",
            Tree::Identity => "identity",
            Tree::Database => "database",
            Tree::Leases => "leases",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine failed (I/O, a broken database, a failed sync).
    #[error("storage backend: {0}")]
    Backend(String),
    /// The engine cannot be reached now (a database that is down or failing over): the
    /// request fails with 503 and may be retried; nothing was applied.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored record does not decrypt or parse: tampered with, moved, or from another store.
    /// Names the record, never its content.
    #[error("record {tree}/{key} failed to decrypt (tampered, moved or foreign)")]
    Corrupt { tree: &'static str, key: String },
    /// The keys are not in memory.
    #[error("Vault is sealed")]
    Sealed,
    /// A crypto primitive failed (the random source, an encryption, the KDF).
    #[error("crypto: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

/// A record as the backend holds it: key and stored bytes.
pub type Record = (Vec<u8>, Vec<u8>);

/// A write before encryption: tree, key, plaintext (`None` deletes).
pub type PlainWrite = (Tree, Vec<u8>, Option<Vec<u8>>);

/// One write in an atomic batch: `None` deletes.
#[derive(Debug)]
pub struct Write {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A condition of [`Backend::apply_if`]: `key` in `tree` holds exactly the stored bytes
/// `expected`, or nothing when `None`. Stored bytes are ciphertexts under fresh nonces, so two
/// writes of the same plaintext still differ: comparing them is a version check.
#[derive(Debug, Clone)]
pub struct Guard {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub expected: Option<Vec<u8>>,
}

/// The storage engine under the sealed store. Async, so that a networked engine (PostgreSQL)
/// waits without holding a runtime worker; sled answers at once.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// All records of `tree` whose key starts with `prefix`, in key order (bytewise).
    async fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Record>, StoreError>;
    /// Sets `key` to `new` only if it currently holds `expected`; returns whether it did.
    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError>;
    /// Applies every write or none.
    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// Applies `writes` only if every guard holds (each key holds exactly its expected stored
    /// bytes, or nothing), as one atomic step; returns whether it did.
    ///
    /// Contract, which every engine must keep:
    /// - all or nothing: on `Ok(false)` and on every error, no write of the batch is visible;
    /// - the checks and the writes are one step: no other writer (of this process or of another
    ///   replica on the same database) can change a guarded key between them; of concurrent
    ///   calls guarding the same key at the same value, at most one returns `Ok(true)`;
    /// - like [`Backend::apply`], not yet durable: call [`Backend::sync`] before acknowledging.
    ///
    /// This is what makes read-modify-write (KV `cas`, token uses, renewals, init) correct across
    /// replicas: read the record, compute, and apply guarded by the bytes read; on `Ok(false)`,
    /// read again. sled runs it as one transaction over its single tree; PostgreSQL as one
    /// transaction that locks the guarded rows (`SELECT … FOR UPDATE`) before comparing.
    async fn apply_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<bool, StoreError>;
    /// [`Backend::apply_if`] with one guard that must be absent, and that the batch must set
    /// itself: a create-once batch (the init marker guards the whole of init).
    async fn apply_if_absent(
        &self,
        guard: (Tree, &[u8]),
        writes: Vec<Write>,
    ) -> Result<bool, StoreError> {
        check_guard_written(guard, &writes)?;
        let guard = Guard {
            tree: guard.0,
            key: guard.1.to_vec(),
            expected: None,
        };
        self.apply_if(vec![guard], writes).await
    }
    /// Returns once every write applied so far is on stable storage.
    async fn sync(&self) -> Result<(), StoreError>;
    /// [`Backend::apply`], then [`Backend::sync`]; an engine whose calls block (sled) does both
    /// in one trip off the async workers.
    async fn apply_durably(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.apply(writes).await?;
        self.sync().await
    }
    /// A counter that moves when another process (a replica on the same database) may have
    /// changed the `config` tree, for caches of it to re-read at once. Only a hint: caches
    /// must still re-check on their own within a bound. `None`: the engine has no such signal
    /// (a single-process engine needs none).
    fn config_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Whether this process is the store's only writer and every write is applied within the
    /// call that makes it (none lands after its future is dropped): then a cache of records,
    /// invalidated by this process's own writes, is never stale. sled holds its directory
    /// lock; PostgreSQL is shared by replicas, so it says no.
    fn exclusive(&self) -> bool {
        false
    }
}

/// Refuses an [`Backend::apply_if_absent`] batch that does not create its own guard.
pub(crate) fn check_guard_written(
    guard: (Tree, &[u8]),
    writes: &[Write],
) -> Result<(), StoreError> {
    let creates_guard = writes
        .iter()
        .any(|w| w.tree == guard.0 && w.key == guard.1 && w.value.is_some());
    if creates_guard {
        Ok(())
    } else {
        Err(StoreError::Backend(
            "apply_if_absent: the batch must set its guard key".into(),
        ))
    }
}

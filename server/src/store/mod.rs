//! Storage. [`Backend`] is the narrow interface every persistent byte goes through (get, put,
//! compare-and-swap, prefix scan, atomic batch, durability barrier), so another engine can
//! replace sled without touching handlers, crypto or policy code. [`sealed::SealedStore`]
//! encrypts every record on its way into a backend.

pub mod group_commit;
pub mod sealed;
pub mod sled_backend;

/// Logical trees. Each is a key namespace in the backend and part of every record's AAD, so a
/// ciphertext moved from one tree to another fails to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// Unencrypted bootstrap records: init marker, key slots, the wrapped keyring.
    Sys,
    /// KV v2 metadata and versions.
    Kv,
    /// Token records keyed by HMAC of the token.
    Tokens,
    /// Accessor index keyed by HMAC of the accessor.
    Accessors,
    /// Issuers, roles and policy documents.
    Config,
    /// Spent JWT ids (`jti`), keyed by HMAC, until the JWT expires.
    Jti,
    /// The token tree: `parent key || child key` (both HMAC storage keys) for each child token,
    /// so revoking a token finds its descendants with a prefix scan.
    TokenParents,
}

impl Tree {
    pub fn tag(self) -> u8 {
        match self {
            Tree::Sys => b's',
            Tree::Kv => b'k',
            Tree::Tokens => b't',
            Tree::Accessors => b'a',
            Tree::Config => b'c',
            Tree::Jti => b'j',
            Tree::TokenParents => b'p',
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
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("record {tree}/{key} failed to decrypt (tampered, moved or foreign)")]
    Corrupt { tree: &'static str, key: String },
    #[error("Vault is sealed")]
    Sealed,
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

pub trait Backend: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// All records of `tree` whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Record>, StoreError>;
    /// Sets `key` to `new` only if it currently holds `expected`; returns whether it did.
    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError>;
    /// Applies every write or none.
    fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// Returns once every write applied so far is on stable storage.
    fn sync(&self) -> Result<(), StoreError>;
}

//! The encrypted layer over a [`Backend`]: key slots, the keyring, seal/unseal and per-record
//! AES-256-GCM.
//!
//! Key hierarchy: each *key slot* (a random unseal key, or an Argon2id-derived passphrase key)
//! wraps the *root key*; the root key wraps the *keyring* (every data-key version plus the HMAC
//! key for token lookups); data keys seal records. Every record is stored as
//! `key_version (u32 BE) || nonce || ciphertext+tag` with AAD binding the tree, the record key and
//! the key version, so a ciphertext copied to another record fails to open.

use super::{Backend, PlainWrite, StoreError, Tree, Write};
use crate::crypto::{self, KdfParams, SecretKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

const INIT_KEY: &[u8] = b"init";
const KEYRING_KEY: &[u8] = b"keyring";
const SLOT_UNSEAL: &[u8] = b"slot/unseal";
const SLOT_PASSPHRASE: &[u8] = b"slot/passphrase";
/// Written (and never removed) by the init of versions before the atomic one.
const STALE_INIT_LOCK_KEY: &[u8] = b"init-lock";

/// The unsealed key material. Dropping it (on seal) zeroizes every key.
pub struct Keyring {
    root: SecretKey,
    data_keys: BTreeMap<u32, SecretKey>,
    current: u32,
    hmac_key: SecretKey,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct KeyringFile {
    current: u32,
    data_keys: BTreeMap<u32, String>,
    hmac_key: String,
}

impl Keyring {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let file = KeyringFile {
            current: self.current,
            data_keys: self
                .data_keys
                .iter()
                .map(|(v, k)| (*v, B64.encode(k.expose())))
                .collect(),
            hmac_key: B64.encode(self.hmac_key.expose()),
        };
        let bytes = Zeroizing::new(serde_json::to_vec(&file).unwrap_or_default());
        for key in file.data_keys.into_values().chain([file.hmac_key]) {
            crypto::wipe(key);
        }
        bytes
    }

    fn decode(root: SecretKey, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt {
            tree: "sys",
            key: "keyring".into(),
        };
        let file: KeyringFile = serde_json::from_slice(bytes).map_err(|_| corrupt())?;
        let decode_key = |s: &str| {
            let raw = Zeroizing::new(B64.decode(s).map_err(|_| corrupt())?);
            SecretKey::from_slice(&raw).ok_or_else(corrupt)
        };
        let mut data_keys = BTreeMap::new();
        for (version, key) in &file.data_keys {
            data_keys.insert(*version, decode_key(key)?);
        }
        let hmac_key = decode_key(&file.hmac_key)?;
        let current = file.current;
        for key in file.data_keys.into_values().chain([file.hmac_key]) {
            crypto::wipe(key);
        }
        if !data_keys.contains_key(&current) {
            return Err(corrupt());
        }
        Ok(Self {
            root,
            data_keys,
            current,
            hmac_key,
        })
    }

    pub fn hmac(&self, data: &[u8]) -> [u8; 32] {
        self.hmac_key.hmac(data)
    }

    pub fn current_version(&self) -> u32 {
        self.current
    }
}

#[derive(Serialize, Deserialize)]
struct SlotFile {
    kind: String,
    /// Root key sealed under the slot's key-encryption key, base64.
    wrapped_root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<KdfParams>,
}

#[derive(Serialize, Deserialize)]
struct InitFile {
    format: u32,
    created_unix: u64,
    passphrase_slot: bool,
}

/// How an operator proves they may unseal.
pub enum UnsealCredential {
    Key(SecretKey),
    Passphrase(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for UnsealCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsealCredential([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("Vault is not initialized")]
    NotInitialized,
    #[error("no passphrase slot was configured at init")]
    NoPassphraseSlot,
    #[error("unseal key or passphrase is incorrect")]
    WrongKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn slot_aad(slot: &[u8]) -> Vec<u8> {
    [b"vaultd/v1/slot/".as_slice(), slot].concat()
}

fn record_aad(tree: Tree, key: &[u8], version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + key.len());
    aad.extend_from_slice(b"vaultd/v1/");
    aad.extend_from_slice(tree.name().as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// A decrypted record: key and plaintext.
pub type PlainRecord = (Vec<u8>, Zeroizing<Vec<u8>>);

/// An encrypted view of a backend. Cheap to clone.
#[derive(Clone)]
pub struct SealedStore {
    backend: Arc<dyn Backend>,
    keys: Arc<RwLock<Option<Arc<Keyring>>>>,
    commits: Arc<super::group_commit::GroupCommit>,
}

impl std::fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedStore")
            .field("sealed", &self.is_sealed())
            .finish()
    }
}

/// What `initialize` hands back exactly once.
pub struct InitOutput {
    pub unseal_key: SecretKey,
}

impl SealedStore {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            keys: Arc::new(RwLock::new(None)),
            commits: Arc::default(),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn is_initialized(&self) -> Result<bool, StoreError> {
        Ok(self.backend.get(Tree::Sys, INIT_KEY)?.is_some())
    }

    pub fn is_sealed(&self) -> bool {
        self.keyring().is_none()
    }

    pub fn keyring(&self) -> Option<Arc<Keyring>> {
        self.keys.read().map(|g| g.clone()).unwrap_or_default()
    }

    fn require_keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        self.keyring().ok_or(StoreError::Sealed)
    }

    /// Creates the root key, the first data key and the key slots, and writes them together
    /// with `seed` (records to create under the new keys, such as the root token) in one atomic
    /// batch. Leaves the store sealed, as Vault does. Returns `None` if already initialised.
    /// A passphrase slot derives its key with the given Argon2id parameters (stored with it).
    pub fn initialize(
        &self,
        passphrase: Option<(&[u8], KdfParams)>,
        seed: impl FnOnce(&SealedStore, &Keyring) -> Result<Vec<Write>, StoreError>,
    ) -> Result<Option<InitOutput>, StoreError> {
        if self.is_initialized()? {
            return Ok(None);
        }
        let keyring = Keyring {
            root: SecretKey::generate()?,
            data_keys: BTreeMap::from([(1, SecretKey::generate()?)]),
            current: 1,
            hmac_key: SecretKey::generate()?,
        };
        let unseal_key = SecretKey::generate()?;
        let mut writes = vec![
            Write {
                tree: Tree::Sys,
                key: SLOT_UNSEAL.to_vec(),
                value: Some(wrap_root(&keyring.root, &unseal_key, SLOT_UNSEAL, None)?),
            },
            Write {
                tree: Tree::Sys,
                key: KEYRING_KEY.to_vec(),
                value: Some(keyring.root.seal(&keyring.encode(), b"vaultd/v1/keyring")?),
            },
        ];
        if let Some((passphrase, params)) = passphrase {
            let salt = crypto::random_bytes::<16>()?;
            let kek = crypto::derive_from_passphrase(passphrase, &salt, params)?;
            writes.push(Write {
                tree: Tree::Sys,
                key: SLOT_PASSPHRASE.to_vec(),
                value: Some(wrap_root(
                    &keyring.root,
                    &kek,
                    SLOT_PASSPHRASE,
                    Some((&salt, params)),
                )?),
            });
        }
        writes.extend(seed(self, &keyring)?);
        let marker = InitFile {
            format: 1,
            created_unix: crate::clock::unix_now(),
            passphrase_slot: passphrase.is_some(),
        };
        // Older versions took a separate `init-lock` record before writing the batch; one
        // left behind by a failed init must not block this one.
        writes.push(Write {
            tree: Tree::Sys,
            key: STALE_INIT_LOCK_KEY.to_vec(),
            value: None,
        });
        writes.push(Write {
            tree: Tree::Sys,
            key: INIT_KEY.to_vec(),
            value: Some(
                serde_json::to_vec(&marker)
                    .expect("an InitFile (integers and a bool) always serialises to JSON"),
            ),
        });
        let written: Vec<(Tree, Vec<u8>)> = writes
            .iter()
            .filter(|w| w.value.is_some())
            .map(|w| (w.tree, w.key.clone()))
            .collect();
        // One atomic step guarded by the init marker itself: of concurrent inits exactly one
        // lands, and a failed one leaves nothing behind.
        if !self
            .backend
            .apply_if_absent((Tree::Sys, INIT_KEY), writes)?
        {
            return Ok(None);
        }
        if let Err(e) = self.backend.sync() {
            // Nobody will see this unseal key: take the init back so it can be retried rather
            // than leave a store no one can unseal.
            let undo = written
                .into_iter()
                .map(|(tree, key)| Write {
                    tree,
                    key,
                    value: None,
                })
                .collect();
            if let Err(undo_error) = self.backend.apply(undo) {
                tracing::error!(error = %undo_error, "could not take back a failed init");
            }
            return Err(e);
        }
        Ok(Some(InitOutput { unseal_key }))
    }

    pub fn unseal(&self, credential: UnsealCredential) -> Result<(), UnsealError> {
        if !self.is_initialized()? {
            return Err(UnsealError::NotInitialized);
        }
        if !self.is_sealed() {
            return Ok(());
        }
        let (slot_key, kek) = match credential {
            UnsealCredential::Key(key) => (SLOT_UNSEAL, key),
            UnsealCredential::Passphrase(passphrase) => {
                let slot = self.read_slot(SLOT_PASSPHRASE)?;
                let salt = slot
                    .salt
                    .as_deref()
                    .and_then(|s| B64.decode(s).ok())
                    .ok_or(UnsealError::NoPassphraseSlot)?;
                let params = slot.kdf.ok_or(UnsealError::NoPassphraseSlot)?;
                let kek = crypto::derive_from_passphrase(&passphrase, &salt, params)
                    .map_err(StoreError::from)?;
                (SLOT_PASSPHRASE, kek)
            }
        };
        let slot = self.read_slot(slot_key)?;
        let wrapped = B64
            .decode(&slot.wrapped_root)
            .map_err(|_| UnsealError::WrongKey)?;
        let root_bytes = kek
            .open(&wrapped, &slot_aad(slot_key))
            .map_err(|_| UnsealError::WrongKey)?;
        let root = SecretKey::from_slice(&root_bytes).ok_or(UnsealError::WrongKey)?;
        let sealed_keyring =
            self.backend
                .get(Tree::Sys, KEYRING_KEY)?
                .ok_or_else(|| StoreError::Corrupt {
                    tree: "sys",
                    key: "keyring".into(),
                })?;
        let keyring_bytes = root
            .open(&sealed_keyring, b"vaultd/v1/keyring")
            .map_err(|_| StoreError::Corrupt {
                tree: "sys",
                key: "keyring".into(),
            })?;
        let keyring = Keyring::decode(root, &keyring_bytes)?;
        if let Ok(mut guard) = self.keys.write() {
            *guard = Some(Arc::new(keyring));
        }
        Ok(())
    }

    fn read_slot(&self, slot_key: &[u8]) -> Result<SlotFile, UnsealError> {
        let raw = self
            .backend
            .get(Tree::Sys, slot_key)?
            .ok_or(UnsealError::NoPassphraseSlot)?;
        serde_json::from_slice(&raw).map_err(|_| {
            UnsealError::Store(StoreError::Corrupt {
                tree: "sys",
                key: String::from_utf8_lossy(slot_key).into_owned(),
            })
        })
    }

    /// Drops the keyring. Keys are zeroized when the last in-flight request holding the
    /// `Arc` finishes.
    pub fn seal(&self) {
        if let Ok(mut guard) = self.keys.write() {
            *guard = None;
        }
    }

    /// Adds a new data-key version used for all new writes; old versions stay readable.
    pub fn rotate(&self) -> Result<u32, StoreError> {
        let mut guard = self
            .keys
            .write()
            .map_err(|_| StoreError::Backend("keyring lock poisoned".into()))?;
        let current = guard.as_ref().ok_or(StoreError::Sealed)?;
        let next = current.current + 1;
        let mut data_keys: BTreeMap<u32, SecretKey> = current
            .data_keys
            .iter()
            .map(|(v, k)| (*v, k.duplicate()))
            .collect();
        data_keys.insert(next, SecretKey::generate()?);
        let rotated = Keyring {
            root: current.root.duplicate(),
            data_keys,
            current: next,
            hmac_key: current.hmac_key.duplicate(),
        };
        let sealed = rotated.root.seal(&rotated.encode(), b"vaultd/v1/keyring")?;
        self.backend.apply(vec![Write {
            tree: Tree::Sys,
            key: KEYRING_KEY.to_vec(),
            value: Some(sealed),
        }])?;
        self.backend.sync()?;
        *guard = Some(Arc::new(rotated));
        Ok(next)
    }

    /// Encrypts `plaintext` for `tree`/`key` under the given keyring's current data key.
    pub fn seal_record(
        keyring: &Keyring,
        tree: Tree,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let version = keyring.current;
        let data_key = keyring.data_keys.get(&version).ok_or(StoreError::Sealed)?;
        let sealed = data_key.seal(plaintext, &record_aad(tree, key, version))?;
        let mut out = Vec::with_capacity(4 + sealed.len());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_record(
        keyring: &Keyring,
        tree: Tree,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let corrupt = || StoreError::Corrupt {
            tree: tree.name(),
            key: String::from_utf8_lossy(key).into_owned(),
        };
        let (version_bytes, sealed) = stored.split_at_checked(4).ok_or_else(corrupt)?;
        let version = u32::from_be_bytes(version_bytes.try_into().map_err(|_| corrupt())?);
        let data_key = keyring.data_keys.get(&version).ok_or_else(corrupt)?;
        data_key
            .open(sealed, &record_aad(tree, key, version))
            .map_err(|_| corrupt())
    }

    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let keyring = self.require_keyring()?;
        match self.backend.get(tree, key)? {
            Some(stored) => Ok(Some(Self::open_record(&keyring, tree, key, &stored)?)),
            None => Ok(None),
        }
    }

    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.get(tree, key)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|_| StoreError::Corrupt {
                        tree: tree.name(),
                        key: String::from_utf8_lossy(key).into_owned(),
                    })
            }
            None => Ok(None),
        }
    }

    /// Decrypted records under a prefix, in key order.
    pub fn scan(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<PlainRecord>, StoreError> {
        let keyring = self.require_keyring()?;
        self.backend
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(|(k, v)| {
                let plain = Self::open_record(&keyring, tree, &k, &v)?;
                Ok((k, plain))
            })
            .collect()
    }

    /// Keys only, without decrypting values.
    pub fn scan_keys(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.require_keyring()?;
        Ok(self
            .backend
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Stores `plaintext` at `key` only if nothing is there; returns whether it did. Atomic
    /// against concurrent callers (the backend's compare-and-swap).
    pub fn insert_if_absent(
        &self,
        tree: Tree,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<bool, StoreError> {
        let keyring = self.require_keyring()?;
        let sealed = Self::seal_record(&keyring, tree, key, plaintext)?;
        self.backend.compare_and_swap(tree, key, None, Some(sealed))
    }

    /// Deletes records without decrypting anything.
    pub fn delete(&self, tree: Tree, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        self.require_keyring()?;
        self.backend.apply(
            keys.into_iter()
                .map(|key| Write {
                    tree,
                    key,
                    value: None,
                })
                .collect(),
        )
    }

    /// Encrypts and applies a batch atomically. Not yet durable: call [`SealedStore::sync`]
    /// before acknowledging.
    pub fn write(&self, writes: Vec<PlainWrite>) -> Result<(), StoreError> {
        let keyring = self.require_keyring()?;
        let sealed = writes
            .into_iter()
            .map(|(tree, key, value)| {
                let value = match value {
                    Some(plain) => {
                        let sealed = Self::seal_record(&keyring, tree, &key, &plain)?;
                        drop(Zeroizing::new(plain));
                        Some(sealed)
                    }
                    None => None,
                };
                Ok(Write { tree, key, value })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.backend.apply(sealed)
    }

    /// Makes every write applied so far durable. Concurrent callers share syncs (group
    /// commit), so one fsync acknowledges many writes.
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.commits.sync(&self.backend).await
    }
}

fn wrap_root(
    root: &SecretKey,
    kek: &SecretKey,
    slot: &[u8],
    kdf: Option<(&[u8], KdfParams)>,
) -> Result<Vec<u8>, StoreError> {
    let wrapped = kek.seal(root.expose(), &slot_aad(slot))?;
    let file = SlotFile {
        kind: if kdf.is_some() {
            "passphrase"
        } else {
            "random"
        }
        .into(),
        wrapped_root: B64.encode(wrapped),
        salt: kdf.map(|(salt, _)| B64.encode(salt)),
        kdf: kdf.map(|(_, params)| params),
    };
    Ok(serde_json::to_vec(&file).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryBackend;

    #[test]
    fn failed_init_is_retryable() {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend.clone());
        backend.fail_next_applies(1);
        assert!(store.initialize(None, |_, _| Ok(vec![])).is_err());
        assert!(!store.is_initialized().expect("status"));
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .expect("second init")
            .expect("second init lands");
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .expect("unseal with the second key");
        assert!(!store.is_sealed());
    }

    #[test]
    fn failed_sync_takes_the_init_back() {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend.clone());
        backend.fail_next_syncs(1);
        assert!(store.initialize(None, |_, _| Ok(vec![])).is_err());
        assert!(!store.is_initialized().expect("status"));
        assert!(backend.raw_records(Tree::Sys).is_empty());
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .expect("second init")
            .expect("second init lands");
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .expect("unseal with the second key");
    }

    #[test]
    fn stale_init_lock_from_older_versions_does_not_block_init() {
        let backend = Arc::new(MemoryBackend::new());
        backend.put_raw(Tree::Sys, b"init-lock", b"1".to_vec());
        let store = SealedStore::new(backend.clone());
        assert!(!store.is_initialized().expect("status"));
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .expect("init")
            .expect("init lands");
        assert!(backend.get(Tree::Sys, b"init-lock").expect("get").is_none());
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .expect("unseal");
    }

    #[test]
    fn concurrent_inits_land_exactly_once() {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend);
        let outputs: Vec<Option<InitOutput>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| store.initialize(None, |_, _| Ok(vec![])).expect("init")))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect()
        });
        let landed: Vec<InitOutput> = outputs.into_iter().flatten().collect();
        assert_eq!(landed.len(), 1);
        assert!(
            store
                .initialize(None, |_, _| Ok(vec![]))
                .expect("init")
                .is_none()
        );
    }
}

//! Record encryption and the data API over a [`Backend`]: [`SealedStore`] encrypts every
//! record on its way in and decrypts it on its way out, with the keys of the unsealed
//! [`Keyring`] (see [`super::keyring`] for the key hierarchy, init, unseal and rotation).
//!
//! Every record is stored as `key_version (u32 BE) || nonce || ciphertext+tag`, with AAD
//! binding the tree, the record key and the key version, so a ciphertext moved to another
//! record, tree or version fails to decrypt. While sealed (no keyring in memory) every read
//! and write answers [`StoreError::Sealed`].

use super::keyring;
use super::{Backend, PlainWrite, StoreError, Tree, Write};
use crate::crypto::KdfParams;
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

// Kept here so `crate::store::sealed::{Keyring, …}` paths keep working.
pub use super::keyring::{InitOutput, Keyring, UnsealCredential, UnsealError};

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
        keyring::is_initialized(&*self.backend)
    }

    pub fn is_sealed(&self) -> bool {
        self.keyring().is_none()
    }

    pub fn keyring(&self) -> Option<Arc<Keyring>> {
        self.read_keys().clone()
    }

    // The guarded value is a single `Option<Arc>`, consistent even if a holder panicked, so a
    // poisoned lock is used as is: sealing must never be skipped because of one.
    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, Option<Arc<Keyring>>> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, Option<Arc<Keyring>>> {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn require_keyring(&self) -> Result<Arc<Keyring>, StoreError> {
        self.keyring().ok_or(StoreError::Sealed)
    }

    /// Initialises the key hierarchy ([`keyring::initialize`]); `seed` returns records
    /// (encrypted with [`SealedStore::encrypt_record`]) to create in the same atomic step.
    /// Leaves the store sealed. Returns `None` if already initialised.
    pub fn initialize(
        &self,
        passphrase: Option<(&[u8], KdfParams)>,
        seed: impl FnOnce(&SealedStore, &Keyring) -> Result<Vec<Write>, StoreError>,
    ) -> Result<Option<InitOutput>, StoreError> {
        keyring::initialize(&*self.backend, passphrase, |keys| seed(self, keys))
    }

    /// Loads the keyring through the slot `credential` opens. Blocking: a passphrase runs
    /// Argon2id. Unsealing an unsealed store changes nothing.
    pub fn unseal(&self, credential: UnsealCredential) -> Result<(), UnsealError> {
        if !self.is_initialized()? {
            return Err(UnsealError::NotInitialized);
        }
        if !self.is_sealed() {
            return Ok(());
        }
        let keys = keyring::unseal(&*self.backend, credential)?;
        *self.write_keys() = Some(Arc::new(keys));
        Ok(())
    }

    /// Drops the keyring. Keys are zeroized when the last in-flight request holding the
    /// `Arc` finishes.
    pub fn seal(&self) {
        *self.write_keys() = None;
    }

    /// Adds a new data-key version used for all new writes; old versions stay readable.
    pub fn rotate(&self) -> Result<u32, StoreError> {
        let mut guard = self.write_keys();
        let current = guard.as_ref().ok_or(StoreError::Sealed)?;
        let rotated = keyring::rotate(&*self.backend, current)?;
        let version = rotated.current_version();
        *guard = Some(Arc::new(rotated));
        Ok(version)
    }

    /// Encrypts `plaintext` for `tree`/`key` under the given keyring's current data key.
    pub fn encrypt_record(
        keyring: &Keyring,
        tree: Tree,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let version = keyring.current_version();
        let data_key = keyring.data_key(version).ok_or(StoreError::Sealed)?;
        let ciphertext = data_key.encrypt(plaintext, &record_aad(tree, key, version))?;
        let mut out = Vec::with_capacity(4 + ciphertext.len());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn decrypt_record(
        keyring: &Keyring,
        tree: Tree,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let corrupt = || StoreError::Corrupt {
            tree: tree.name(),
            key: String::from_utf8_lossy(key).into_owned(),
        };
        let (version_bytes, ciphertext) = stored.split_at_checked(4).ok_or_else(corrupt)?;
        let version = u32::from_be_bytes(version_bytes.try_into().map_err(|_| corrupt())?);
        let data_key = keyring.data_key(version).ok_or_else(corrupt)?;
        data_key
            .decrypt(ciphertext, &record_aad(tree, key, version))
            .map_err(|_| corrupt())
    }

    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let keyring = self.require_keyring()?;
        match self.backend.get(tree, key)? {
            Some(stored) => Ok(Some(Self::decrypt_record(&keyring, tree, key, &stored)?)),
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
                let plain = Self::decrypt_record(&keyring, tree, &k, &v)?;
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
        let stored = Self::encrypt_record(&keyring, tree, key, plaintext)?;
        self.backend.compare_and_swap(tree, key, None, Some(stored))
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
        let encrypted = writes
            .into_iter()
            .map(|(tree, key, value)| {
                let value = match value {
                    Some(plain) => {
                        let stored = Self::encrypt_record(&keyring, tree, &key, &plain)?;
                        drop(Zeroizing::new(plain));
                        Some(stored)
                    }
                    None => None,
                };
                Ok(Write { tree, key, value })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.backend.apply(encrypted)
    }

    /// Makes every write applied so far durable. Concurrent callers share syncs (group
    /// commit), so one fsync acknowledges many writes.
    pub async fn sync(&self) -> Result<(), StoreError> {
        self.commits.sync(&self.backend).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use crate::store::memory::MemoryBackend;

    /// An initialised, unsealed store over memory, its backend and its unseal key.
    fn unsealed_store() -> (SealedStore, Arc<MemoryBackend>, SecretKey) {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend.clone());
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .expect("init")
            .expect("init lands");
        let key = output.unseal_key.duplicate();
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .expect("unseal");
        (store, backend, key)
    }

    fn put(store: &SealedStore, tree: Tree, key: &[u8], value: &[u8]) {
        store
            .write(vec![(tree, key.to_vec(), Some(value.to_vec()))])
            .expect("write");
    }

    fn read(store: &SealedStore, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        store.get(tree, key).map(|v| v.map(|v| v.to_vec()))
    }

    #[test]
    fn records_round_trip_and_are_not_stored_in_clear() {
        let (store, backend, _) = unsealed_store();
        put(&store, Tree::Kv, b"a", b"correct horse battery");
        assert_eq!(
            read(&store, Tree::Kv, b"a").expect("read"),
            Some(b"correct horse battery".to_vec())
        );
        let (_, stored) = backend.raw_records(Tree::Kv).remove(0);
        assert!(
            !stored
                .windows(b"correct horse".len())
                .any(|w| w == b"correct horse")
        );
        assert_eq!(read(&store, Tree::Kv, b"missing").expect("read"), None);
    }

    #[test]
    fn ciphertext_moved_to_another_key_or_tree_fails_to_decrypt() {
        let (store, backend, _) = unsealed_store();
        put(&store, Tree::Kv, b"a", b"value a");
        let (_, stored) = backend.raw_records(Tree::Kv).remove(0);
        backend.put_raw(Tree::Kv, b"b", stored.clone());
        backend.put_raw(Tree::Config, b"a", stored);
        for (tree, key) in [(Tree::Kv, &b"b"[..]), (Tree::Config, b"a")] {
            assert!(matches!(
                read(&store, tree, key),
                Err(StoreError::Corrupt { .. })
            ));
        }
        assert!(read(&store, Tree::Kv, b"a").is_ok());
    }

    #[test]
    fn swapped_ciphertexts_fail_to_decrypt() {
        let (store, backend, _) = unsealed_store();
        put(&store, Tree::Tokens, b"one", b"first");
        put(&store, Tree::Tokens, b"two", b"second");
        let records = backend.raw_records(Tree::Tokens);
        backend.put_raw(Tree::Tokens, &records[0].0, records[1].1.clone());
        backend.put_raw(Tree::Tokens, &records[1].0, records[0].1.clone());
        assert!(read(&store, Tree::Tokens, b"one").is_err());
        assert!(read(&store, Tree::Tokens, b"two").is_err());
        assert!(store.scan(Tree::Tokens, b"").is_err());
    }

    #[test]
    fn tampered_or_truncated_records_fail_to_decrypt() {
        let (store, backend, _) = unsealed_store();
        put(&store, Tree::Kv, b"a", b"value");
        let (_, stored) = backend.raw_records(Tree::Kv).remove(0);
        let mut flipped = stored.clone();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        // A record claiming another key version is refused too (the version is in the AAD).
        let mut other_version = stored.clone();
        other_version[..4].copy_from_slice(&2u32.to_be_bytes());
        for bad in [
            flipped,
            stored[..3].to_vec(),
            stored[..20].to_vec(),
            other_version,
        ] {
            backend.put_raw(Tree::Kv, b"a", bad);
            assert!(matches!(
                read(&store, Tree::Kv, b"a"),
                Err(StoreError::Corrupt { .. })
            ));
        }
    }

    #[test]
    fn rotation_keeps_old_versions_readable_and_new_writes_use_the_new_one() {
        let (store, backend, key) = unsealed_store();
        put(&store, Tree::Kv, b"old", b"before rotation");
        assert_eq!(store.rotate().expect("rotate"), 2);
        put(&store, Tree::Kv, b"new", b"after rotation");
        let version_of = |record_key: &[u8]| {
            let records = backend.raw_records(Tree::Kv);
            let (_, stored) = records
                .iter()
                .find(|(k, _)| k == record_key)
                .expect("record");
            u32::from_be_bytes(stored[..4].try_into().expect("4 bytes"))
        };
        assert_eq!(version_of(b"old"), 1);
        assert_eq!(version_of(b"new"), 2);
        // After a seal and unseal (the rotated keyring comes back from the backend), both read.
        store.seal();
        store.unseal(UnsealCredential::Key(key)).expect("unseal");
        assert_eq!(store.keyring().expect("keyring").current_version(), 2);
        assert_eq!(
            read(&store, Tree::Kv, b"old").expect("old"),
            Some(b"before rotation".to_vec())
        );
        assert_eq!(
            read(&store, Tree::Kv, b"new").expect("new"),
            Some(b"after rotation".to_vec())
        );
    }

    #[test]
    fn wrong_unseal_key_or_passphrase_is_refused_and_leaves_the_store_sealed() {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend);
        let params = KdfParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        };
        store
            .initialize(Some((b"a long operator passphrase", params)), |_, _| {
                Ok(vec![])
            })
            .expect("init")
            .expect("init lands");
        let wrong_key = UnsealCredential::Key(SecretKey::generate().expect("key"));
        assert!(matches!(
            store.unseal(wrong_key),
            Err(UnsealError::WrongKey)
        ));
        let wrong_passphrase =
            UnsealCredential::Passphrase(Zeroizing::new(b"a long wrong passphrase".to_vec()));
        assert!(matches!(
            store.unseal(wrong_passphrase),
            Err(UnsealError::WrongKey)
        ));
        assert!(store.is_sealed());
        let right =
            UnsealCredential::Passphrase(Zeroizing::new(b"a long operator passphrase".to_vec()));
        store.unseal(right).expect("unseal");
        assert!(!store.is_sealed());
    }

    #[test]
    fn sealing_drops_the_keys_and_reads_answer_sealed() {
        let (store, _, key) = unsealed_store();
        put(&store, Tree::Kv, b"a", b"value");
        store.seal();
        assert!(store.is_sealed());
        assert!(store.keyring().is_none());
        assert!(matches!(
            read(&store, Tree::Kv, b"a"),
            Err(StoreError::Sealed)
        ));
        assert!(matches!(store.scan(Tree::Kv, b""), Err(StoreError::Sealed)));
        assert!(matches!(
            store.scan_keys(Tree::Kv, b""),
            Err(StoreError::Sealed)
        ));
        assert!(matches!(
            store.write(vec![(Tree::Kv, b"b".to_vec(), Some(b"x".to_vec()))]),
            Err(StoreError::Sealed)
        ));
        assert!(matches!(
            store.insert_if_absent(Tree::Kv, b"c", b"x"),
            Err(StoreError::Sealed)
        ));
        assert!(matches!(store.rotate(), Err(StoreError::Sealed)));
        store.unseal(UnsealCredential::Key(key)).expect("unseal");
        assert_eq!(
            read(&store, Tree::Kv, b"a").expect("read"),
            Some(b"value".to_vec())
        );
    }

    #[test]
    fn insert_if_absent_inserts_once() {
        let (store, _, _) = unsealed_store();
        assert!(
            store
                .insert_if_absent(Tree::Jti, b"j", b"1")
                .expect("insert")
        );
        assert!(
            !store
                .insert_if_absent(Tree::Jti, b"j", b"2")
                .expect("insert")
        );
        assert_eq!(
            read(&store, Tree::Jti, b"j").expect("read"),
            Some(b"1".to_vec())
        );
    }

    #[test]
    fn failed_write_changes_nothing() {
        let (store, backend, _) = unsealed_store();
        backend.fail_next_applies(1);
        assert!(
            store
                .write(vec![
                    (Tree::Kv, b"a".to_vec(), Some(b"1".to_vec())),
                    (Tree::Kv, b"b".to_vec(), Some(b"2".to_vec())),
                ])
                .is_err()
        );
        assert!(backend.raw_records(Tree::Kv).is_empty());
    }

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

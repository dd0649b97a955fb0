//! Record encryption and the data API over a [`Backend`]: [`SealedStore`] encrypts every
//! record on its way in and decrypts it on its way out, with the keys of the unsealed
//! [`Keyring`] (see [`super::keyring`] for the key hierarchy, init, unseal and rotation).
//!
//! Every record is stored as `key_version (u32 BE) || nonce || ciphertext+tag`, with AAD
//! binding the tree, the record key and the key version, so a ciphertext moved to another
//! record, tree or version fails to decrypt. While sealed (no keyring in memory) every read
//! and write answers [`StoreError::Sealed`].

use super::keyring;
use super::{Backend, Guard, PlainWrite, StoreError, Tree, Write};
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

/// A record read for a guarded write: its value (`None` if absent) and the guard that holds
/// while nobody has changed it since.
#[derive(Debug)]
pub struct Versioned<T> {
    pub value: Option<T>,
    pub guard: Guard,
}

/// A decrypted record: key and plaintext.
pub type PlainRecord = (Vec<u8>, Zeroizing<Vec<u8>>);

/// The trees whose writes are watched for exact caches.
const WATCHED: [Tree; 2] = [Tree::Tokens, Tree::Kv];

/// An encrypted view of a backend. Cheap to clone.
#[derive(Clone)]
pub struct SealedStore {
    backend: Arc<dyn Backend>,
    keys: Arc<RwLock<Option<Arc<Keyring>>>>,
    commits: Arc<super::group_commit::GroupCommit>,
    combiner: Arc<super::group_commit::WriteCombiner>,
    rotation: Arc<tokio::sync::Mutex<()>>,
    /// Bumped by every seal. Work that installs keys after awaiting (unseal, rotation, a
    /// reload) installs them only if no seal happened since it began: a seal is never undone.
    seals: Arc<std::sync::atomic::AtomicU64>,
    /// Set once the store was seen initialised: initialisation is never undone, so from then
    /// on `sys/health` and the seal status need no read of an exclusive backend.
    initialized: Arc<std::sync::atomic::AtomicBool>,
    /// Writes to the token and KV trees, for the caches of token records and KV metadata.
    watches: Arc<[super::write_watch::WriteWatch; WATCHED.len()]>,
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
            combiner: Arc::default(),
            rotation: Arc::default(),
            seals: Arc::default(),
            initialized: Arc::default(),
            watches: Arc::default(),
        }
    }

    /// The watch over writes to `tree` (one of [`WATCHED`]), when a cache of its records can
    /// be exact: only with an exclusive backend (see [`Backend::exclusive`]); replicas sharing
    /// a database have no cache, as another replica's writes would not reach it.
    pub fn watch_of(&self, tree: Tree) -> Option<&super::write_watch::WriteWatch> {
        let index = WATCHED.iter().position(|&t| t == tree)?;
        self.backend.exclusive().then(|| &self.watches[index])
    }

    /// Watches a batch while it is written, on each watched tree it touches.
    fn watch<I>(&self, trees: I) -> Vec<super::write_watch::Watched<'_>>
    where
        I: IntoIterator<Item = Tree>,
    {
        let mut touched = [false; WATCHED.len()];
        for tree in trees {
            if let Some(index) = WATCHED.iter().position(|&t| t == tree) {
                touched[index] = true;
            }
        }
        self.watches
            .iter()
            .zip(touched)
            .filter(|(_, touched)| *touched)
            .map(|(watch, _)| watch.begin())
            .collect()
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub async fn is_initialized(&self) -> Result<bool, StoreError> {
        use std::sync::atomic::Ordering;
        // A shared database is read every time: health then also says whether it answers.
        if self.backend.exclusive() && self.initialized.load(Ordering::Acquire) {
            return Ok(true);
        }
        let initialized = keyring::is_initialized(&*self.backend).await?;
        if initialized {
            self.initialized.store(true, Ordering::Release);
        }
        Ok(initialized)
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

    /// A keyring that holds the data-key version `stored` was written under. A version newer
    /// than ours means another replica rotated: the stored keyring is loaded again (once per
    /// rotation). An unknown older version is left for decryption to refuse.
    async fn keyring_for(&self, stored: &[u8]) -> Result<Arc<Keyring>, StoreError> {
        let keyring = self.require_keyring()?;
        let version = stored
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes);
        let Some(version) = version.filter(|v| *v > keyring.current_version()) else {
            return Ok(keyring);
        };
        let _one = self.rotation.lock().await;
        let since = self.seal_count();
        let keyring = self.require_keyring()?;
        if keyring.data_key(version).is_some() {
            return Ok(keyring);
        }
        let reloaded = Arc::new(keyring::reload(&*self.backend, &keyring).await?);
        if !self.install_unless_sealed_since(since, reloaded.clone()) {
            return Err(StoreError::Sealed);
        }
        tracing::info!(
            version = reloaded.current_version(),
            "data key rotated elsewhere; keyring reloaded"
        );
        Ok(reloaded)
    }

    /// Initialises the key hierarchy ([`keyring::initialize`]); `seed` returns records
    /// (encrypted with [`SealedStore::encrypt_record`]) to create in the same atomic step.
    /// Leaves the store sealed. Returns `None` if already initialised.
    pub async fn initialize(
        &self,
        passphrase: Option<(&[u8], KdfParams)>,
        seed: impl FnOnce(&SealedStore, &Keyring) -> Result<Vec<Write>, StoreError>,
    ) -> Result<Option<InitOutput>, StoreError> {
        keyring::initialize(&*self.backend, passphrase, |keys| seed(self, keys)).await
    }

    /// Loads the keyring through the slot `credential` opens. A passphrase runs Argon2id on
    /// the calling thread: run it off the async workers (`http::sys` does, one at a time).
    /// Unsealing an unsealed store changes nothing.
    pub async fn unseal(&self, credential: UnsealCredential) -> Result<(), UnsealError> {
        if !self.is_initialized().await? {
            return Err(UnsealError::NotInitialized);
        }
        if !self.is_sealed() {
            return Ok(());
        }
        let since = self.seal_count();
        let keys = keyring::unseal(&*self.backend, credential).await?;
        // Sealed while we derived and read? Then the seal stands.
        self.install_unless_sealed_since(since, Arc::new(keys));
        Ok(())
    }

    /// Drops the keyring. Keys are zeroized when the last in-flight request holding the
    /// `Arc` finishes.
    pub fn seal(&self) {
        let mut keys = self.write_keys();
        self.seals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *keys = None;
        for watch in self.watches.iter() {
            watch.bump();
        }
    }

    fn seal_count(&self) -> u64 {
        self.seals.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Installs `keys` unless a seal happened after `since` (a [`SealedStore::seal_count`]);
    /// returns whether it did.
    fn install_unless_sealed_since(&self, since: u64, keys: Arc<Keyring>) -> bool {
        let mut slot = self.write_keys();
        if self.seal_count() != since {
            return false;
        }
        *slot = Some(keys);
        true
    }

    /// Adds a new data-key version used for all new writes; old versions stay readable.
    pub async fn rotate(&self) -> Result<u32, StoreError> {
        // One rotation at a time; the keyring in memory is replaced only once the new one is
        // durable.
        let _one = self.rotation.lock().await;
        let since = self.seal_count();
        let current = self.require_keyring()?;
        let rotated = keyring::rotate(&*self.backend, &current).await?;
        let version = rotated.current_version();
        // The new version is stored either way; a seal meanwhile keeps the keys dropped.
        self.install_unless_sealed_since(since, Arc::new(rotated));
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

    pub async fn get(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        match self.get_sealed(tree, key).await? {
            Some(stored) => Ok(Some(self.open(tree, key, &stored).await?)),
            None => Ok(None),
        }
    }

    /// A record as it is stored, still encrypted: what a cache of records may hold without
    /// holding their plaintext. [`SealedStore::open`] decrypts it. Refused while sealed.
    pub async fn get_sealed(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.require_keyring()?;
        self.backend.get(tree, key).await
    }

    /// Decrypts a record [`SealedStore::get_sealed`] read at `key`. Refused while sealed.
    pub async fn open(
        &self,
        tree: Tree,
        key: &[u8],
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let keyring = self.keyring_for(stored).await?;
        Self::decrypt_record(&keyring, tree, key, stored)
    }

    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        Ok(self.get_versioned_json(tree, key).await?.value)
    }

    /// Reads a record together with the guard a later [`SealedStore::write_if`] needs to
    /// change it only if nobody else did in between (any replica).
    pub async fn get_versioned_json<T: serde::de::DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Versioned<T>, StoreError> {
        self.require_keyring()?;
        let stored = self.backend.get(tree, key).await?;
        let value = match &stored {
            Some(stored) => {
                let keyring = self.keyring_for(stored).await?;
                let bytes = Self::decrypt_record(&keyring, tree, key, stored)?;
                Some(
                    serde_json::from_slice(&bytes).map_err(|_| StoreError::Corrupt {
                        tree: tree.name(),
                        key: String::from_utf8_lossy(key).into_owned(),
                    })?,
                )
            }
            None => None,
        };
        Ok(Versioned {
            value,
            guard: Guard {
                tree,
                key: key.to_vec(),
                expected: stored,
            },
        })
    }

    /// Decrypted records under a prefix, in key order.
    pub async fn scan(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<PlainRecord>, StoreError> {
        self.require_keyring()?;
        let records = self.backend.scan_prefix(tree, prefix).await?;
        let mut plain = Vec::with_capacity(records.len());
        for (k, v) in records {
            let keyring = self.keyring_for(&v).await?;
            let value = Self::decrypt_record(&keyring, tree, &k, &v)?;
            plain.push((k, value));
        }
        Ok(plain)
    }

    /// Keys only, without decrypting values.
    pub async fn scan_keys(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.require_keyring()?;
        Ok(self
            .backend
            .scan_prefix(tree, prefix)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }

    /// Stores `plaintext` at `key` only if nothing is there; returns whether it did. Atomic
    /// against concurrent callers, of every replica (the backend's compare-and-swap).
    pub async fn insert_if_absent(
        &self,
        tree: Tree,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<bool, StoreError> {
        let keyring = self.require_keyring()?;
        let stored = Self::encrypt_record(&keyring, tree, key, plaintext)?;
        let _watched = self.watch([tree]);
        self.backend
            .compare_and_swap(tree, key, None, Some(stored))
            .await
    }

    /// Deletes records without decrypting anything.
    pub async fn delete(&self, tree: Tree, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        self.require_keyring()?;
        let _watched = self.watch([tree]);
        self.backend
            .apply(
                keys.into_iter()
                    .map(|key| Write {
                        tree,
                        key,
                        value: None,
                    })
                    .collect(),
            )
            .await
    }

    fn encrypt_writes(&self, writes: Vec<PlainWrite>) -> Result<Vec<Write>, StoreError> {
        let keyring = self.require_keyring()?;
        writes
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
            .collect()
    }

    /// Encrypts and applies a batch atomically. Not yet durable: call [`SealedStore::sync`]
    /// before acknowledging.
    pub async fn write(&self, writes: Vec<PlainWrite>) -> Result<(), StoreError> {
        let encrypted = self.encrypt_writes(writes)?;
        let _watched = self.watch(encrypted.iter().map(|w| w.tree));
        self.backend.apply(encrypted).await
    }

    /// Encrypts and applies a batch only if every guard (from
    /// [`SealedStore::get_versioned_json`]) still holds; returns whether it did. Not yet
    /// durable, like [`SealedStore::write`].
    pub async fn write_if(
        &self,
        guards: Vec<Guard>,
        writes: Vec<PlainWrite>,
    ) -> Result<bool, StoreError> {
        let encrypted = self.encrypt_writes(writes)?;
        let _watched = self.watch(encrypted.iter().map(|w| w.tree));
        self.backend.apply_if(guards, encrypted).await
    }

    /// Encrypts and applies a batch, combined with other callers' independent batches, and
    /// returns once it is durable: one backend batch and one sync for all of them (see
    /// `WriteCombiner`). For writes that need no guard, such as a new token's records.
    pub async fn write_durable(&self, writes: Vec<PlainWrite>) -> Result<(), StoreError> {
        let encrypted = self.encrypt_writes(writes)?;
        // Combined batches land when their leader applies them, which may be after this
        // future was dropped; they only create records (new tokens), which no cache holds.
        let _watched = self.watch(encrypted.iter().map(|w| w.tree));
        self.combiner.apply_durably(&self.backend, encrypted).await
    }

    /// [`SealedStore::write_durable`], only if nothing is stored at `once` (a tree, key and
    /// plaintext that the batch stores too): each `once` key is created by one batch only, as
    /// [`SealedStore::insert_if_absent`] would. Returns whether the batch landed, once durable.
    /// On an exclusive backend the check joins the combined batch (no separate store
    /// operation, and the key lands with the rest or not at all); on a shared one it is the
    /// backend's compare-and-swap first, so a crash in between can leave the key without the
    /// rest — never the rest without it.
    pub async fn write_durable_once(
        &self,
        once: (Tree, Vec<u8>, Vec<u8>),
        mut writes: Vec<PlainWrite>,
    ) -> Result<bool, StoreError> {
        let (tree, key, plaintext) = once;
        if !self.backend.exclusive() {
            if !self.insert_if_absent(tree, &key, &plaintext).await? {
                return Ok(false);
            }
            return self.write_durable(writes).await.map(|()| true);
        }
        writes.push((tree, key.clone(), Some(plaintext)));
        let encrypted = self.encrypt_writes(writes)?;
        let _watched = self.watch(encrypted.iter().map(|w| w.tree));
        self.combiner
            .apply_durably_once(&self.backend, (tree, key), encrypted)
            .await
    }

    /// How the durable writes of [`SealedStore::write_durable`] and
    /// [`SealedStore::write_durable_once`] combine, for the metrics.
    pub fn commit_counts(&self) -> &super::group_commit::CommitCounts {
        self.combiner.counts()
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
    async fn unsealed_store() -> (SealedStore, Arc<MemoryBackend>, SecretKey) {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend.clone());
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .await
            .expect("init")
            .expect("init lands");
        let key = output.unseal_key.duplicate();
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .await
            .expect("unseal");
        (store, backend, key)
    }

    async fn put(store: &SealedStore, tree: Tree, key: &[u8], value: &[u8]) {
        store
            .write(vec![(tree, key.to_vec(), Some(value.to_vec()))])
            .await
            .expect("write");
    }

    async fn read(
        store: &SealedStore,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        store.get(tree, key).await.map(|v| v.map(|v| v.to_vec()))
    }

    #[tokio::test]
    async fn records_round_trip_and_are_not_stored_in_clear() {
        let (store, backend, _) = unsealed_store().await;
        put(&store, Tree::Kv, b"a", b"correct horse battery").await;
        assert_eq!(
            read(&store, Tree::Kv, b"a").await.expect("read"),
            Some(b"correct horse battery".to_vec())
        );
        let (_, stored) = backend.raw_records(Tree::Kv).remove(0);
        assert!(
            !stored
                .windows(b"correct horse".len())
                .any(|w| w == b"correct horse")
        );
        assert_eq!(
            read(&store, Tree::Kv, b"missing").await.expect("read"),
            None
        );
    }

    #[tokio::test]
    async fn ciphertext_moved_to_another_key_or_tree_fails_to_decrypt() {
        let (store, backend, _) = unsealed_store().await;
        put(&store, Tree::Kv, b"a", b"value a").await;
        let (_, stored) = backend.raw_records(Tree::Kv).remove(0);
        backend.put_raw(Tree::Kv, b"b", stored.clone());
        backend.put_raw(Tree::Config, b"a", stored);
        for (tree, key) in [(Tree::Kv, &b"b"[..]), (Tree::Config, b"a")] {
            assert!(matches!(
                read(&store, tree, key).await,
                Err(StoreError::Corrupt { .. })
            ));
        }
        assert!(read(&store, Tree::Kv, b"a").await.is_ok());
    }

    #[tokio::test]
    async fn swapped_ciphertexts_fail_to_decrypt() {
        let (store, backend, _) = unsealed_store().await;
        put(&store, Tree::Tokens, b"one", b"first").await;
        put(&store, Tree::Tokens, b"two", b"second").await;
        let records = backend.raw_records(Tree::Tokens);
        backend.put_raw(Tree::Tokens, &records[0].0, records[1].1.clone());
        backend.put_raw(Tree::Tokens, &records[1].0, records[0].1.clone());
        assert!(read(&store, Tree::Tokens, b"one").await.is_err());
        assert!(read(&store, Tree::Tokens, b"two").await.is_err());
        assert!(store.scan(Tree::Tokens, b"").await.is_err());
    }

    #[tokio::test]
    async fn tampered_or_truncated_records_fail_to_decrypt() {
        let (store, backend, _) = unsealed_store().await;
        put(&store, Tree::Kv, b"a", b"value").await;
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
                read(&store, Tree::Kv, b"a").await,
                Err(StoreError::Corrupt { .. })
            ));
        }
    }

    #[tokio::test]
    async fn rotation_keeps_old_versions_readable_and_new_writes_use_the_new_one() {
        let (store, backend, key) = unsealed_store().await;
        put(&store, Tree::Kv, b"old", b"before rotation").await;
        assert_eq!(store.rotate().await.expect("rotate"), 2);
        put(&store, Tree::Kv, b"new", b"after rotation").await;
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
        store
            .unseal(UnsealCredential::Key(key))
            .await
            .expect("unseal");
        assert_eq!(store.keyring().expect("keyring").current_version(), 2);
        assert_eq!(
            read(&store, Tree::Kv, b"old").await.expect("old"),
            Some(b"before rotation".to_vec())
        );
        assert_eq!(
            read(&store, Tree::Kv, b"new").await.expect("new"),
            Some(b"after rotation".to_vec())
        );
    }

    #[tokio::test]
    async fn wrong_unseal_key_or_passphrase_is_refused_and_leaves_the_store_sealed() {
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
            .await
            .expect("init")
            .expect("init lands");
        let wrong_key = UnsealCredential::Key(SecretKey::generate().expect("key"));
        assert!(matches!(
            store.unseal(wrong_key).await,
            Err(UnsealError::WrongKey)
        ));
        let wrong_passphrase =
            UnsealCredential::Passphrase(Zeroizing::new(b"a long wrong passphrase".to_vec()));
        assert!(matches!(
            store.unseal(wrong_passphrase).await,
            Err(UnsealError::WrongKey)
        ));
        assert!(store.is_sealed());
        let right =
            UnsealCredential::Passphrase(Zeroizing::new(b"a long operator passphrase".to_vec()));
        store.unseal(right).await.expect("unseal");
        assert!(!store.is_sealed());
    }

    #[tokio::test]
    async fn sealing_drops_the_keys_and_reads_answer_sealed() {
        let (store, _, key) = unsealed_store().await;
        put(&store, Tree::Kv, b"a", b"value").await;
        store.seal();
        assert!(store.is_sealed());
        assert!(store.keyring().is_none());
        assert!(matches!(
            read(&store, Tree::Kv, b"a").await,
            Err(StoreError::Sealed)
        ));
        assert!(matches!(
            store.scan(Tree::Kv, b"").await,
            Err(StoreError::Sealed)
        ));
        assert!(matches!(
            store.scan_keys(Tree::Kv, b"").await,
            Err(StoreError::Sealed)
        ));
        assert!(matches!(
            store
                .write(vec![(Tree::Kv, b"b".to_vec(), Some(b"x".to_vec()))])
                .await,
            Err(StoreError::Sealed)
        ));
        assert!(matches!(
            store.insert_if_absent(Tree::Kv, b"c", b"x").await,
            Err(StoreError::Sealed)
        ));
        assert!(matches!(store.rotate().await, Err(StoreError::Sealed)));
        store
            .unseal(UnsealCredential::Key(key))
            .await
            .expect("unseal");
        assert_eq!(
            read(&store, Tree::Kv, b"a").await.expect("read"),
            Some(b"value".to_vec())
        );
    }

    #[tokio::test]
    async fn insert_if_absent_inserts_once() {
        let (store, _, _) = unsealed_store().await;
        assert!(
            store
                .insert_if_absent(Tree::Jti, b"j", b"1")
                .await
                .expect("insert")
        );
        assert!(
            !store
                .insert_if_absent(Tree::Jti, b"j", b"2")
                .await
                .expect("insert")
        );
        assert_eq!(
            read(&store, Tree::Jti, b"j").await.expect("read"),
            Some(b"1".to_vec())
        );
    }

    #[tokio::test]
    async fn failed_write_changes_nothing() {
        let (store, backend, _) = unsealed_store().await;
        backend.fail_next_applies(1);
        assert!(
            store
                .write(vec![
                    (Tree::Kv, b"a".to_vec(), Some(b"1".to_vec())),
                    (Tree::Kv, b"b".to_vec(), Some(b"2".to_vec())),
                ])
                .await
                .is_err()
        );
        assert!(backend.raw_records(Tree::Kv).is_empty());
    }

    #[tokio::test]
    async fn failed_init_is_retryable() {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend.clone());
        backend.fail_next_applies(1);
        assert!(store.initialize(None, |_, _| Ok(vec![])).await.is_err());
        assert!(!store.is_initialized().await.expect("status"));
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .await
            .expect("second init")
            .expect("second init lands");
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .await
            .expect("unseal with the second key");
        assert!(!store.is_sealed());
    }

    #[tokio::test]
    async fn failed_sync_takes_the_init_back() {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend.clone());
        backend.fail_next_syncs(1);
        assert!(store.initialize(None, |_, _| Ok(vec![])).await.is_err());
        assert!(!store.is_initialized().await.expect("status"));
        assert!(backend.raw_records(Tree::Sys).is_empty());
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .await
            .expect("second init")
            .expect("second init lands");
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .await
            .expect("unseal with the second key");
    }

    #[tokio::test]
    async fn stale_init_lock_from_older_versions_does_not_block_init() {
        let backend = Arc::new(MemoryBackend::new());
        backend.put_raw(Tree::Sys, b"init-lock", b"1".to_vec());
        let store = SealedStore::new(backend.clone());
        assert!(!store.is_initialized().await.expect("status"));
        let output = store
            .initialize(None, |_, _| Ok(vec![]))
            .await
            .expect("init")
            .expect("init lands");
        assert!(
            backend
                .get(Tree::Sys, b"init-lock")
                .await
                .expect("get")
                .is_none()
        );
        store
            .unseal(UnsealCredential::Key(output.unseal_key))
            .await
            .expect("unseal");
    }

    #[tokio::test]
    async fn a_seal_during_a_rotation_or_an_unseal_stands() {
        let (store, backend, key) = unsealed_store().await;
        // A rotation that finishes after a seal does not put the keys back.
        let since = store.seal_count();
        store.seal();
        let keys = Arc::new(
            keyring::unseal(&*backend, UnsealCredential::Key(key.duplicate()))
                .await
                .expect("keys"),
        );
        assert!(!store.install_unless_sealed_since(since, keys.clone()));
        assert!(store.is_sealed());
        // An unseal that began after the seal does install them.
        assert!(store.install_unless_sealed_since(store.seal_count(), keys));
        assert!(!store.is_sealed());
        // And a real rotation racing a seal leaves the store sealed.
        let rotating = {
            let store = store.clone();
            tokio::spawn(async move { store.rotate().await })
        };
        store.seal();
        let _ = rotating.await.expect("join");
        assert!(store.is_sealed(), "a rotation undid the seal");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_inits_land_exactly_once() {
        let backend = Arc::new(MemoryBackend::new());
        let store = SealedStore::new(backend);
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .initialize(None, |_, _| Ok(vec![]))
                        .await
                        .expect("init")
                })
            })
            .collect();
        let mut outputs: Vec<Option<InitOutput>> = Vec::new();
        for task in tasks {
            outputs.push(task.await.expect("join"));
        }
        let landed: Vec<InitOutput> = outputs.into_iter().flatten().collect();
        assert_eq!(landed.len(), 1);
        assert!(
            store
                .initialize(None, |_, _| Ok(vec![]))
                .await
                .expect("init")
                .is_none()
        );
    }
}

//! [`Backend`] in memory, for unit tests of the layers above storage: one ordered map per
//! tree under one mutex, so every batch is trivially atomic. Fault injection makes the next
//! writes or syncs fail, to test what a failed write leaves behind. Only the storage is fake:
//! everything stored through it is encrypted by the real crypto.

use super::{Backend, Guard, Record, StoreError, Tree, Write};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    trees: HashMap<u8, BTreeMap<Vec<u8>, Vec<u8>>>,
    /// How many of the next batches (`apply`, `apply_if_absent`) fail without changing
    /// anything.
    failing_applies: usize,
    /// How many of the next `sync` calls fail.
    failing_syncs: usize,
}

#[derive(Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBackend")
    }
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` batches fail with a backend error and change nothing.
    pub fn fail_next_applies(&self, n: usize) {
        self.lock().failing_applies = n;
    }

    /// The next `n` syncs fail with a backend error.
    pub fn fail_next_syncs(&self, n: usize) {
        self.lock().failing_syncs = n;
    }

    /// Every record of `tree` as stored (ciphertext), for tests that tamper with the file.
    pub fn raw_records(&self, tree: Tree) -> Vec<Record> {
        self.lock()
            .trees
            .get(&tree.tag())
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Sets a stored value directly, bypassing every layer above (tampering, old formats).
    pub fn put_raw(&self, tree: Tree, key: &[u8], value: Vec<u8>) {
        self.lock()
            .trees
            .entry(tree.tag())
            .or_default()
            .insert(key.to_vec(), value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl State {
    fn injected_apply_fault(&mut self) -> Result<(), StoreError> {
        if self.failing_applies > 0 {
            self.failing_applies -= 1;
            return Err(StoreError::Backend("injected apply failure".into()));
        }
        Ok(())
    }

    fn apply_all(&mut self, writes: Vec<Write>) {
        for w in writes {
            let tree = self.trees.entry(w.tree.tag()).or_default();
            match w.value {
                Some(v) => tree.insert(w.key, v),
                None => tree.remove(&w.key),
            };
        }
    }

    fn get(&self, tree: Tree, key: &[u8]) -> Option<&Vec<u8>> {
        self.trees.get(&tree.tag()).and_then(|t| t.get(key))
    }
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    fn exclusive(&self) -> bool {
        true
    }

    async fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(tree, key).cloned())
    }

    async fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Record>, StoreError> {
        Ok(self
            .lock()
            .trees
            .get(&tree.tag())
            .map(|t| {
                t.range(prefix.to_vec()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.get(tree, key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        state.apply_all(vec![Write {
            tree,
            key: key.to_vec(),
            value: new,
        }]);
        Ok(true)
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.injected_apply_fault()?;
        state.apply_all(writes);
        Ok(())
    }

    async fn apply_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<bool, StoreError> {
        let mut state = self.lock();
        state.injected_apply_fault()?;
        if guards
            .iter()
            .any(|g| state.get(g.tree, &g.key) != g.expected.as_ref())
        {
            return Ok(false);
        }
        state.apply_all(writes);
        Ok(true)
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.failing_syncs > 0 {
            state.failing_syncs -= 1;
            return Err(StoreError::Backend("injected sync failure".into()));
        }
        Ok(())
    }
}

/// An initialised, unsealed sealed store over a fresh in-memory backend, for unit tests of the
/// engines above the store (tokens, KV): real encryption, no files, no process.
pub async fn unsealed_store() -> (super::sealed::SealedStore, std::sync::Arc<MemoryBackend>) {
    let backend = std::sync::Arc::new(MemoryBackend::new());
    let store = super::sealed::SealedStore::new(backend.clone());
    let output = store
        .initialize(None, |_, _| Ok(vec![]))
        .await
        .expect("init on an empty memory backend")
        .expect("init lands");
    store
        .unseal(super::sealed::UnsealCredential::Key(output.unseal_key))
        .await
        .expect("unseal with the key init returned");
    (store, backend)
}

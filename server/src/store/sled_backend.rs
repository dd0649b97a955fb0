//! [`Backend`] on an embedded sled 0.34 database. All logical trees share one sled tree with a
//! one-byte prefix, so a batch across trees is a single atomic sled batch.

use super::{Backend, StoreError, Tree, Write};
use std::path::Path;

pub struct SledBackend {
    db: sled::Db,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SledBackend")
    }
}

fn backend_err(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn full_key(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(tree.tag());
    k.extend_from_slice(key);
    k
}

impl SledBackend {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // Durability comes from explicit `sync` calls before each acknowledgement.
            .flush_every_ms(Some(1000))
            .open()
            .map_err(backend_err)?;
        Ok(Self { db })
    }
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get(full_key(tree, key))
            .map_err(backend_err)?
            .map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<super::Record>, StoreError> {
        self.db
            .scan_prefix(full_key(tree, prefix))
            .map(|item| {
                let (k, v) = item.map_err(backend_err)?;
                Ok((k[1..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn compare_and_swap(
        &self,
        tree: Tree,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let result = self
            .db
            .compare_and_swap(full_key(tree, key), expected, new)
            .map_err(backend_err)?;
        Ok(result.is_ok())
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for w in writes {
            match w.value {
                Some(v) => batch.insert(full_key(w.tree, &w.key), v),
                None => batch.remove(full_key(w.tree, &w.key)),
            }
        }
        self.db.apply_batch(batch).map_err(backend_err)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend_err)
    }
}

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

    fn apply_if_absent(
        &self,
        guard: (Tree, &[u8]),
        writes: Vec<Write>,
    ) -> Result<bool, StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        super::check_guard_written(guard, &writes)?;
        let guard_key = full_key(guard.0, guard.1);
        let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = writes
            .into_iter()
            .map(|w| (full_key(w.tree, &w.key), w.value))
            .collect();
        // Every logical tree lives in the one sled tree, so one transaction covers the batch.
        // sled may rerun the closure on conflict, hence writes by reference.
        let result = self.db.transaction(|tx| {
            if tx.get(&guard_key)?.is_some() {
                return Ok(false);
            }
            for (key, value) in &writes {
                match value {
                    Some(v) => tx.insert(key.as_slice(), v.as_slice())?,
                    None => tx.remove(key.as_slice())?,
                };
            }
            Ok::<_, ConflictableTransactionError<()>>(true)
        });
        match result {
            Ok(applied) => Ok(applied),
            Err(TransactionError::Storage(e)) => Err(backend_err(e)),
            Err(TransactionError::Abort(())) => {
                Err(StoreError::Backend("init transaction aborted".into()))
            }
        }
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary() -> SledBackend {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("temporary sled");
        SledBackend { db }
    }

    fn create(key: &[u8], value: &[u8]) -> Write {
        Write {
            tree: Tree::Sys,
            key: key.to_vec(),
            value: Some(value.to_vec()),
        }
    }

    #[test]
    fn apply_if_absent_lands_once_across_trees() {
        let backend = temporary();
        let batch = |n: u8| {
            vec![
                create(b"marker", &[n]),
                Write {
                    tree: Tree::Tokens,
                    key: vec![n],
                    value: Some(vec![n]),
                },
            ]
        };
        let applied: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u8)
                .map(|n| {
                    let backend = &backend;
                    scope.spawn(move || {
                        backend
                            .apply_if_absent((Tree::Sys, b"marker"), batch(n))
                            .expect("apply")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("join"))
                .collect()
        });
        assert_eq!(applied.iter().filter(|a| **a).count(), 1);
        let winner = backend
            .get(Tree::Sys, b"marker")
            .expect("get")
            .expect("set");
        let tokens = backend.scan_prefix(Tree::Tokens, b"").expect("scan");
        assert_eq!(tokens, vec![(winner.clone(), winner)]);
    }

    #[test]
    fn apply_if_absent_requires_the_batch_to_set_its_guard() {
        let backend = temporary();
        assert!(
            backend
                .apply_if_absent((Tree::Sys, b"marker"), vec![create(b"other", b"x")])
                .is_err()
        );
        assert!(backend.get(Tree::Sys, b"other").expect("get").is_none());
    }
}
